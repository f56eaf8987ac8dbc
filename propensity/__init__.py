"""The `propensity` command line, the one config file and the end-to-end job."""
