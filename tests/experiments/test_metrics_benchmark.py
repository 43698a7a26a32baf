from dmlnotes.experiments import metrics_benchmark
from dmlnotes.metrics import faiss_available


def test_the_metrics_benchmark_runs_every_method_and_checks_their_values(capsys):
    assert metrics_benchmark.main(["--sizes", "300", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line[10:36].strip(): line.split()[-1] for line in out.splitlines()[2:]}
    expected = {"dmlnotes, torch"}
    if faiss_available():
        expected |= {"dmlnotes, faiss", "PML AccuracyCalculator", "faiss flat search alone"}
    assert set(rows) == expected
    # Each method that returns values agrees with dmlnotes' torch search.
    compared = [rows[name] for name in expected if name != "faiss flat search alone"]
    assert compared == ["True"] * len(compared)
