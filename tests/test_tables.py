"""Tables read right or refused: the CSV corpus in tests/data/tables, each file as pandas would
misread it by default, through tabular.read and through the check made before any job
(snaketune.study.data_check.check_data). tests/test_bad_input.py runs one of them through snakemake."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from snaketune.core.errors import ConfigError, DataError
from snaketune.data import tabular
from snaketune.data.task import check
from snaketune.study.config import Study
from snaketune.study.data_check import check_data

TABLES = Path(__file__).parent / "data" / "tables"


def data_config(csv, target, **changes):
    """A `data:` section as the config check gets it (the schema's defaults filled in)."""
    return {
        "path": None,
        "loader": None,
        "csv": str(csv),
        "sha256": None,
        "target": target,
        "features": None,
        "test": None,
        "inputs": [],
        "task": None,
        "validation_split": 0.25,
        "subset": None,
        "test_split": 0.2,
        "seed": 0,
        **changes,
    }


REFUSED = [
    (
        "stray_question_mark.csv",
        "label",
        "column 'age' holds numbers but for 1 of its 24 values, '?' (line 11), "
        "for which the whole column would be read "
        "as text codes: correct those values, or drop or fill their rows where they stand for a missing value",
    ),
    # the target: read as text, its 24 prices would have been a 24-class classification
    ("target_typo.csv", "price", "column 'price' holds numbers but for 1 of its 24 values, '21.5o' (line 16)"),
    (
        "thousands_separators.csv",
        "label",
        "column 'income' holds numbers written with separators, '1,024' (line 4), '1,061' (line 5), '1,098' (line 6), "
        "'1,135' (line 7), '1,172' (line 8) and 17 more, which would be read as text",
    ),
    (
        "date_column.csv",
        "label",
        "column 'sold' holds dates, '2024-03-01' (line 2), '2024-03-04' (line 3), '2024-03-07' (line 4), '2024-03-10' "
        "(line 5), '2024-03-13' (line 6) and 19 more, which a model cannot take as they are",
    ),
    ("semicolons_decimal_commas.csv", "label", "column 'price' holds numbers written with separators, '10,0' (line 2)"),
]
FIXES = {
    "thousands_separators.csv": "pandas.read_csv('{path}', thousands=',').to_csv('{path}', index=False)",
    "date_column.csv": "turn them into numbers in the file",
    "semicolons_decimal_commas.csv": (
        "pandas.read_csv('{path}', sep=';', decimal=',', thousands='.').to_csv('{path}', index=False)"
    ),
}


@pytest.mark.parametrize("name, target, needle", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_column_pandas_would_read_as_text_is_refused_naming_it_the_rows_and_the_fix(name, target, needle):
    path = TABLES / name
    with pytest.raises(DataError) as refused:
        tabular.read(path, target)
    message = str(refused.value)
    assert message.startswith(f"data.csv: '{path}': {needle}"), message
    assert FIXES.get(name, "").format(path=path) in message
    with pytest.raises(ConfigError, match=re.escape(f"config: data.csv: '{path}': {needle}")):
        check_data(data_config(path, target))


def test_the_rows_named_are_the_lines_of_the_file_with_blank_lines_in_between(tmp_path):
    lines = (TABLES / "stray_question_mark.csv").read_text().splitlines()
    path = tmp_path / "blanks.csv"
    path.write_text("\n".join(lines[:5] + ["", ""] + lines[5:]) + "\n")
    assert path.read_text().splitlines()[12] == "?,red,29.25,no"
    with pytest.raises(DataError, match=re.escape("'?' (line 13)")):
        tabular.read(path, "label")
    # and blank lines change nothing else: the columns keep their types (integers stay integers)
    lines = (TABLES / "semicolons.csv").read_text().splitlines()
    (tmp_path / "blank.csv").write_text("\n".join(lines[:5] + [""] + lines[5:]) + "\n\n")
    with_blanks, _ = tabular.read(tmp_path / "blank.csv", "age")
    without, _ = tabular.read(TABLES / "semicolons.csv", "age")
    assert with_blanks["y_train"].dtype == np.int64
    for key in without:
        np.testing.assert_array_equal(with_blanks[key], without[key])


def test_the_offending_values_are_listed_up_to_five(tmp_path):
    rows = [f"{i},{i % 2}" for i in range(40)]
    for line in (3, 9, 12, 20, 21, 30, 33):
        rows[line] = f"n/k{line},{line % 2}"
    (tmp_path / "t.csv").write_text("size,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        DataError,
        match=re.escape(
            "but for 7 of its 40 values, 'n/k3' (line 5), 'n/k9' (line 11), "
            "'n/k12' (line 14), 'n/k20' (line 22), 'n/k21' (line 23) and 2 more"
        ),
    ):
        tabular.read(tmp_path / "t.csv", "label")


def test_a_text_column_with_a_few_numbers_is_still_text(tmp_path):
    sizes = ["S", "M", "L", "XL"] * 6
    sizes[5] = "42"
    (tmp_path / "t.csv").write_text("size,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(sizes)))
    arrays, described = tabular.read(tmp_path / "t.csv", "label")
    assert described["categories"] == {"size": ["42", "L", "M", "S", "XL"]}


def test_a_stray_value_in_the_test_file_is_named_with_that_file(tmp_path):
    shutil.copy(TABLES / "semicolons.csv", tmp_path / "train.csv")
    lines = (TABLES / "semicolons.csv").read_text().splitlines()
    lines[3] = "32;green;?;yes"
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=re.escape(
            f"data.test: '{tmp_path / 'test.csv'}': column 'price' holds "
            "numbers but for 1 of its 24 values, '?' (line 4)"
        ),
    ):
        tabular.read(tmp_path / "train.csv", "label", test=tmp_path / "test.csv")


def test_a_semicolon_file_reads_as_the_comma_file_does():
    semicolons, described = tabular.read(TABLES / "semicolons.csv", "label")
    commas, _ = tabular.read(TABLES / "index_column.csv", "label")
    assert described["delimiter"] == ";" and described["features"] == ["age", "colour", "price"]
    for key in semicolons:
        np.testing.assert_array_equal(semicolons[key], commas[key])


def test_a_file_whose_delimiter_is_none_of_the_known_is_refused_naming_what_was_seen(tmp_path):
    (tmp_path / "t.csv").write_text("age colour label\n" + "".join(f"{i} red {i % 2}\n" for i in range(20)))
    with pytest.raises(
        DataError,
        match=re.escape(
            f"data.csv: '{tmp_path / 't.csv'}': read as one column, its header 'age colour label': no delimiter "
            "among comma, semicolon, tab and | separates its columns"
        ),
    ):
        tabular.read(tmp_path / "t.csv", "label")


def test_the_index_to_csv_writes_is_dropped_and_noted():
    arrays, described = tabular.read(TABLES / "index_column.csv", "label")
    assert described["features"] == ["age", "colour", "price"] and arrays["x_train"].shape[1] == 3
    assert "the row index DataFrame.to_csv() writes" in described["dropped_columns"]["Unnamed: 0"]
    summary = check_data(data_config(TABLES / "index_column.csv", "label"))
    assert summary["inputs"] == {"": [3]} and summary["task"] == "binary"


def test_a_shuffled_index_is_an_index_too(tmp_path):
    lines = (TABLES / "index_column.csv").read_text().splitlines()
    (tmp_path / "t.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert "Unnamed: 0" in tabular.read(tmp_path / "t.csv", "label")[1]["dropped_columns"]


def test_another_column_without_a_name_is_refused_unless_the_features_leave_it_out(tmp_path):
    (tmp_path / "t.csv").write_text("age,,label\n" + "".join(f"{i},{['a', 'b'][i % 2]},{i % 2}\n" for i in range(20)))
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 2 has no name in the header (pandas calls it 'Unnamed: 1'), "
            "so what it holds is unknown: name it in the header, or list"
        ),
    ):
        tabular.read(tmp_path / "t.csv", "label")
    arrays, described = tabular.read(tmp_path / "t.csv", "label", features=["age"])
    assert described["features"] == ["age"] and "dropped_columns" not in described


def test_labels_written_as_floats_are_classes():
    arrays, _ = tabular.read(TABLES / "float_labels.csv", "label")
    assert arrays["y_train"].dtype == np.int64 and set(np.unique(arrays["y_train"])) == {0, 1, 2}
    summary = check_data(data_config(TABLES / "float_labels.csv", "label"))
    assert summary["task"] == "classification" and summary["num_classes"] == 3
    # unless the config says they are numbers
    kept, _ = tabular.read(TABLES / "float_labels.csv", "label", task="regression")
    assert kept["y_train"].dtype == np.float32
    assert check_data(data_config(TABLES / "float_labels.csv", "label", task="regression"))["task"] == "regression"


def test_real_valued_targets_stay_a_regression():
    arrays, _ = tabular.read(TABLES / "semicolons.csv", "price")
    assert arrays["y_train"].dtype == np.float32 and check(arrays, "t")["task"] == "regression"


@pytest.mark.parametrize("values", [[25.0, 151.0, 346.0, 75.0], [1.0, 2.0, 3.0, 2.0], [0.0, 1.0, 3.0, 2.0, 7.0]])
def test_whole_numbers_other_than_every_label_from_0_stay_numbers_unless_the_task_says_classes(tmp_path, values):
    # examples/data/diabetes.csv's progression (25.0..346.0, 214 values) is such a target:
    # taken for labels it would have been a 347-class classification
    column = (values * 6)[:24]
    (tmp_path / "t.csv").write_text("a,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(column)))
    arrays, _ = tabular.read(tmp_path / "t.csv", "y")
    assert arrays["y_train"].dtype == np.float32 and check(arrays, "t")["task"] == "regression"
    stated, _ = tabular.read(tmp_path / "t.csv", "y", task="classification")
    assert stated["y_train"].dtype == np.int64


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_a_text_target_is_never_regressed_on_its_codes(task):
    with pytest.raises(
        DataError,
        match=re.escape(
            f"data.task: {task}, but the target column 'colour' of '{TABLES / 'semicolons.csv'}' holds text ('blue', "
            "'green', 'red'): text is class labels, a classification; a regression needs numbers"
        ),
    ):
        tabular.read(TABLES / "semicolons.csv", "colour", task=task)
    arrays, _ = tabular.read(TABLES / "semicolons.csv", "colour", task="classification")
    assert check(arrays, "t", "classification")["num_classes"] == 3


@pytest.mark.parametrize(
    "name, target, named",
    [
        ("index_column.csv", "label", {"dropped_columns": ["Unnamed: 0"]}),
        ("float_labels.csv", "label", {"labels_from_floats": True}),
        ("semicolons.csv", "price", {}),
    ],
)
def test_what_the_reader_does_differently_than_before_is_part_of_the_datas_identity(name, target, named):
    # an earlier snaketune kept the index as a feature and regressed on float labels: those
    # studies' data and trials are made anew, no other study's identity changes
    data = data_config(TABLES / name, target)
    identity = Study(config={"data": data}, declared_space=None, data_summary=check_data(data)).data_identity()
    assert {k: identity[k] for k in ("dropped_columns", "labels_from_floats") if k in identity} == named
