"""Backends: where a program's generations and scores come from."""
