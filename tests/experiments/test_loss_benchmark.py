from dmlnotes.experiments import loss_benchmark


def test_the_benchmark_times_every_pairing_in_interleaved_rounds(capsys, monkeypatch):
    calls = []
    real = loss_benchmark.time_step

    def counted(step, embeddings, labels, min_run_time):
        calls.append(step)
        return real(step, embeddings, labels, min_run_time)

    monkeypatch.setattr(loss_benchmark, "time_step", counted)
    assert (
        loss_benchmark.main(
            ["--classes", "4", "--per-class", "2", "--dim", "8", "--rounds", "3", "--min-run-time", "0.001"]
        )
        == 0
    )
    out = capsys.readouterr().out
    pairings = loss_benchmark.pairings(4, 8)
    for pairing in pairings:
        assert pairing.name in out
    assert "medians over 3 interleaved rounds" in out and "slower than pytorch-metric-learning" in out
    with_counterpart = sum(p.theirs is not None for p in pairings)
    assert len(calls) == 3 * (2 * with_counterpart + (len(pairings) - with_counterpart))


def test_the_deep_clustering_section_times_both_forms_per_size(capsys, monkeypatch):
    calls = []
    real = loss_benchmark.time_step

    def counted(step, embeddings, labels, min_run_time):
        calls.append(len(labels))
        return real(step, embeddings, labels, min_run_time)

    monkeypatch.setattr(loss_benchmark, "time_step", counted)
    argv = ["--deep-clustering", "--sizes", "8", "20", "--dim", "4", "--rounds", "1", "--min-run-time", "0.001"]
    assert loss_benchmark.main(argv) == 0
    out = capsys.readouterr().out
    assert "low-rank ms" in out and "N x N ms" in out
    assert calls == [8, 8, 20, 20]  # both forms, once per size
    rows = loss_benchmark.deep_clustering_scaling([12], dim=3, rounds=1, min_run_time=0.001)
    size, classes, _, _, _, difference = rows[0]
    assert (size, classes) == (12, 3) and difference < 1e-5  # the two forms agree
