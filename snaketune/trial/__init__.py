"""One trial: train a configuration, check a user's model before any job, test the final
model, read and check trial records, place jobs on GPU slots."""
