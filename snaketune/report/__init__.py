"""The report: trial tables, the aggregate over strategies, the Optuna analysis, the summary
and the plots."""
