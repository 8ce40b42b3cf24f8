"""Snakemake glue: job logs, retries and attempts, resources, groups for cluster bundles, and
the completion check."""
