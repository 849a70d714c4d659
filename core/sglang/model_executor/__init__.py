"""Running a model: the per-step batch the model sees, the model registry and the runner."""
