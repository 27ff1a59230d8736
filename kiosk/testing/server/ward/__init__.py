"""The ward app of the reference server: patients, observations, demo data, test counters."""
