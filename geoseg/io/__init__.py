"""Input and output: the only package that opens files."""
