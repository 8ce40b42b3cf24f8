"""The study: the validated configuration and its checks, the plan of every output path and
round, and proposing the next round."""
