"""Build steps of the distribution; not installed with the package."""
