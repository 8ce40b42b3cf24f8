"""snaketune: hyperparameter tuning of Keras models as a Snakemake workflow.

Modules that Snakemake imports while it builds the DAG (config, space, strategies, plan,
identity) never import TensorFlow; the job-side modules (train, discover, data, final,
strategies.bayesian) do, lazily.
"""

__version__ = "0.1.0"
