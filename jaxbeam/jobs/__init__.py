"""What the ``jaxbeam`` command and the experiments run: cached labels, model builders, step budgets,
pre-training and fine-tuning, evaluation against the references, the quickstart and the benchmarks."""
