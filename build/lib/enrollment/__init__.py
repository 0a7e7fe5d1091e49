"""The batch enrollment job: reads a manifest, runs workers, writes a report."""
