"""synthbank package."""
