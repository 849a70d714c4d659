"""Model building blocks. Every computation goes through an op of the selected platform
(`OpTable`), so a model written against these layers runs on any backend."""
