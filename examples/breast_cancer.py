"""A data loader for snaketune: the breast cancer data set that scikit-learn ships (569 tumours,
30 features computed from images, malignant or benign), split into training and test rows."""

import numpy as np
from sklearn.datasets import load_breast_cancer


def load_data():
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:114], order[114:]
    # 1 is benign in scikit-learn; the task (binary) is inferred from the one 0/1 column
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
