"""Tables of the benchmark's results."""

from sklearn_dallmi.benchmark.report import format_markdown, versus_best


def _row(method, pair, keep, seed, ap, f1=0.5):
    return {"method": method, "pair": pair, "keep": keep, "seed": seed, "macro_ap": ap,
            "macro_f1": f1, "micro_f1": f1, "binarized_ap": ap, "fit_seconds": 1.0}


ROWS = [
    _row("dallmi", "a->b", 0.1, 0, 0.40), _row("dallmi", "a->b", 0.1, 1, 0.42),
    _row("peer1", "a->b", 0.1, 0, 0.38), _row("peer1", "a->b", 0.1, 1, 0.38),
    _row("peer2", "a->b", 0.1, 0, 0.45), _row("peer2", "a->b", 0.1, 1, 0.43),
    _row("dallmi", "b->a", 0.1, 0, 0.30), _row("peer1", "b->a", 0.1, 0, 0.25),
]


def test_versus_best_takes_the_best_other_method_per_pair():
    table = versus_best(ROWS, "dallmi", ["peer1", "peer2"], metrics=("macro_ap",))
    lines = table.splitlines()
    assert lines[0] == "| metric | kept | a->b | b->a | wins |"
    # a->b: 0.41 - 0.44 (peer2); b->a: 0.30 - 0.25 (peer1, the only one there).
    assert lines[2] == "| macro_ap | 10% | -0.030 (peer2) | +0.050 (peer1) | 1/2 |"


def test_format_markdown_gives_mean_and_std_over_seeds_of_the_pair_means():
    table = format_markdown(ROWS, ["dallmi", "peer1"])
    assert "**10% of the target positives kept**" in table
    # dallmi: seed 0 averages its two pairs (0.35), seed 1 has one (0.42).
    assert "| dallmi | 0.385 ± 0.035 |" in table


def test_plot_draws_one_panel_per_metric(tmp_path):
    import matplotlib.image

    from sklearn_dallmi.benchmark.report import plot

    path = tmp_path / "figure" / "benchmark.png"
    plot(ROWS, ["dallmi", "peer1", "peer2"], path, peers=("peer1", "peer2"))
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 0.8 < height / width < 1.2  # 2 x 2 panels, readable at page width
