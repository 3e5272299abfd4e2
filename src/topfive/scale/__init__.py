"""Running classify and evaluate on an existing distributed engine (Ray Data) instead of one process.

    sources.py     folder / glob / CSV / manifest -> the ordered list of inputs (Input)
    shards.py      the shard plan (fixed slices of that list), skip-if-written, atomic shard files, merge
    ray_engine.py  the Ray Data pipeline: decode tasks -> model actors -> per shard, the answers in order
    jobs.py        one model's job run shard by shard; answers as Prediction / Failure
    classify.py    `classify --engine ray`: the rows of `classify --format csv`
    evaluate.py    `evaluate --engine ray`: predictions.csv's rows, then topfive.eval's own summary files
    options.py     the command-line options (argparse only); commands.py the two commands' ray branch

Ray is an optional extra (`pip install 'topfive[ray]'`), imported only when the engine runs.
See docs/scale-out.md.
"""
