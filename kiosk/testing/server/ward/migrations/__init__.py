"""Migrations of the ward app."""
