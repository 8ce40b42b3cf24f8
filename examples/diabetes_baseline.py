"""The plain baseline for examples/diabetes_regression.yaml: a linear regression (scikit-learn)
fitted on the same training rows and scored on the same test rows as the study's final model.

    python examples/diabetes_baseline.py
"""

import sys
from pathlib import Path

import yaml
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from snaketune.data.tabular import read  # noqa: E402  (the study's own reading of the CSV)

config = yaml.safe_load((Path(__file__).parent / "diabetes_regression.yaml").read_text())["data"]
arrays, _ = read(config["csv"], config["target"], test_split=config["test_split"], seed=config.get("seed", 0))
model = LinearRegression().fit(arrays["x_train"], arrays["y_train"])
print(
    f"linear regression, test MAE: {mean_absolute_error(arrays['y_test'], model.predict(arrays['x_test'])):.2f} "
    f"({len(arrays['y_train'])} training rows, {len(arrays['y_test'])} test rows)"
)
