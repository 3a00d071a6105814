"""`lit-mia reproduce`: the seed papers' findings as claims with fixed bands (conf/reproduce/),
run through the normal experiment path and judged on their 95% intervals.

    claims.py    claims files: loading, validation against the config schema and metric keys
    intervals.py the interval of a statistic from what the runs logged (pure)
    verdict.py   statistic, interval, verdict (pure)
    runner.py    grouping claims into runs, run.run_experiment, judging
    report.py    the HTML report, its JSON and the Markdown docs page
    command.py   the subcommand (registered in cli.py)
"""
