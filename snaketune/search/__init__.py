"""The search: the space of hyperparameters, its Keras Tuner and Optuna forms, the objective,
Hyperband's schedule, and the strategies that propose configurations."""
