"""Tests of the tools around the package: command line, benchmarks, soak script, notebooks, wheel."""
