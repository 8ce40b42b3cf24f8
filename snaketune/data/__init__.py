"""Data: where a study's arrays come from (an .npz, CSV tables, a loader, MNIST), the task
they pose, and the prepared train/validation/test split on disk."""
