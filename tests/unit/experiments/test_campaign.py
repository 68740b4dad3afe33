"""Campaign files: validation before anything starts, planning, resumable CSV rows."""


import pytest

from tests.locations import CAMPAIGNS, ROOT
from twin.errors import InputError
from twin.experiments.campaign import (
    append_row,
    describe_point,
    estimate_seconds,
    existing_rows,
    load_campaign,
    variant,
)
from twin.spec.topology import FIBER_US_PER_KM

GOOD = f"""name: t
topology: {ROOT}/topologies/ci-2site.yaml
schedule: {{forward: 10ms, backward: 20ms, buckets: [1M, 1M]}}
iterations: 2
sweep:
  distance_km: [500, 2000]
  algo: [ring, hier]
"""


def write(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return f


def problems(tmp_path, text):
    with pytest.raises(InputError) as exc:
        load_campaign(write(tmp_path, text))
    return exc.value.problems


def test_plan_is_the_cartesian_product_with_stable_ids(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    pts = c.points()
    assert len(pts) == 4 and len({p["row_id"] for p in pts}) == 4
    assert [p["row_id"] for p in load_campaign(write(tmp_path, GOOD)).points()] == [p["row_id"] for p in pts]


def test_unknown_parameter_names_the_line(tmp_path):
    (p,) = problems(tmp_path, GOOD.replace("  algo: [ring, hier]", "  colour: [red]"))
    assert p == f"{tmp_path / 'c.yaml'}: line 7: sweep.colour: unknown field " \
                "(known: distance_km, wan_rate, loss, algo, overlap, controller, interference)"


def test_empty_sweep_and_impossible_values(tmp_path):
    ps = problems(tmp_path, GOOD.replace("[500, 2000]", "[]").replace("[ring, hier]", "[ring, warp]"))
    assert any("line 6: sweep.distance_km: must be a non-empty list" in p for p in ps)
    assert any("line 7: sweep.algo[1]: 'warp' is not ring, hd, tree or hier" in p for p in ps)
    ps = problems(tmp_path, GOOD.replace("[500, 2000]", "[-5]"))
    assert "not a distance" in ps[0]


def test_unknown_top_level_field_and_bad_topology(tmp_path):
    assert "line 1: nmae: unknown field" in problems(tmp_path, "nmae: x\n" + GOOD)[0]
    ps = problems(tmp_path, GOOD.replace("ci-2site.yaml", "nope.yaml"))
    assert "line 2: topology:" in ps[0] and "cannot read file" in ps[0]


def test_variant_applies_distance_to_every_link(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    p = c.points()[-1]
    topo = variant(c, p)
    assert topo.link_distance_km(topo.links[0]) == 2000
    assert topo.link_delay(topo.links[0]) == pytest.approx(2000 * FIBER_US_PER_KM * 1e-6)


# The first row ids of each shipped campaign, as planned by main before the campaign file became
# a model: they are the ids of the committed CSVs (results/campaigns/*.csv), and resuming a
# committed campaign must not run its rows again.
SHIPPED_IDS = {
    "determinism": (12, ["50e623760095e029", "a8688d9a160844c6", "943c863b5790f6cd"]),
    "fntf-40city": (2, ["f41499856bd6e953", "e72ce895b1e8247e"]),
    "fntf-reference": (32, ["7ddcafd2edd30a08", "362056cd5e55dc08", "c76f798d0e266d3b"]),
}


@pytest.mark.parametrize("name", sorted(SHIPPED_IDS))
def test_shipped_campaigns_plan_the_rows_of_their_committed_csvs(name):
    count, first = SHIPPED_IDS[name]
    ids = [p["row_id"] for p in load_campaign(CAMPAIGNS / f"{name}.yaml").points()]
    assert len(ids) == count and ids[:len(first)] == first
    committed = ROOT / "results" / "campaigns" / f"{name}.csv"
    assert set(ids) <= existing_rows(committed)


def test_points_describe_themselves_in_the_order_of_the_sweep(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    p = c.points()[0]
    assert describe_point(p) == "distance_km=500.0, loss=0, algo=ring, overlap=True, " \
                                "controller=none, interference=False"


def test_the_campaign_scale_replaces_the_topology_scale(tmp_path):
    c = load_campaign(write(tmp_path, GOOD + "scale: 1/4000\n"))
    assert c.scale == "1/4000" and c.topology.scale.bandwidth == pytest.approx(1 / 4000)
    topo = variant(c, c.points()[0])
    assert topo.emulated_rate(topo.links[0].rate) == pytest.approx(400e9 / 4000)


def test_a_shortened_campaign_plans_and_estimates_less(tmp_path):
    c = load_campaign(write(tmp_path, GOOD.replace("iterations: 2", "iterations: 3\nrepeats: 2")))
    full = estimate_seconds(c, c.points())
    assert len(c.points()) == 8
    c.repeats, c.iterations = 1, 1  # what the demo does for its quick run
    assert len(c.points()) == 4 and estimate_seconds(c, c.points()) < full


def test_rows_are_appended_once_and_found_again(tmp_path):
    csv_path = tmp_path / "out.csv"
    c = load_campaign(write(tmp_path, GOOD))
    for p in c.points()[:3]:
        append_row(csv_path, {"row_id": p["row_id"], "status": "ok"})
    assert existing_rows(csv_path) == {p["row_id"] for p in c.points()[:3]}
    assert csv_path.read_text().count("row_id") == 1  # one header


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

scalars = st.one_of(st.none(), st.integers(-5, 10**5), st.floats(allow_nan=True), st.text(max_size=8),
                    st.booleans(), st.lists(st.integers(-3, 3), max_size=3))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["distance_km", "wan_rate", "loss", "algo", "overlap", "controller",
                            "interference", "colour"]),
       values=st.one_of(scalars, st.lists(scalars, max_size=3)),
       top=st.sampled_from(["iterations", "repeats", "schedule", "name", "extra", "topology", "scale",
                            "description", "sweep", "seed"]), top_value=scalars)
def test_fuzzed_campaign_files_fail_with_lines_never_tracebacks(tmp_path, key, values, top, top_value):
    import yaml
    doc = yaml.safe_load(GOOD)
    doc["sweep"][key] = values
    doc[top] = top_value
    f = tmp_path / "fuzz.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        load_campaign(f)
    except InputError as exc:
        assert exc.problems and all(p.startswith(f"{f}: ") and "\n" not in p for p in exc.problems)


# ---- resuming: each row id by its latest attempt; --retry-failed -----------------------------

from twin.experiments.campaign import (  # noqa: E402
    FIELDS,
    campaign_rows,
    latest_attempts,
    plan,
)


def rows_csv(tmp_path, c, statuses: list[tuple[int, str]], name="t"):
    """A campaign CSV with one row per (point index, status), in that order."""
    csv_path = tmp_path / "rows.csv"
    pts = c.points()
    for i, status in statuses:
        append_row(csv_path, {"row_id": pts[i]["row_id"], "campaign": name, "status": status,
                              "error": "boom" if status == "failed" else ""})
    return csv_path


def test_without_retry_a_failed_row_is_done_and_counted(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    csv_path = rows_csv(tmp_path, c, [(0, "ok"), (1, "failed")])
    p = plan(c, csv_path)
    assert [x["row_id"] for x in p.todo] == [x["row_id"] for x in c.points()[2:]]
    assert (p.done, p.failed, p.retried) == (2, 1, set())


def test_retry_failed_runs_again_the_points_whose_latest_row_failed(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    ids = [x["row_id"] for x in c.points()]
    # point 0 failed then succeeded; point 1 succeeded then failed; point 2 failed twice
    csv_path = rows_csv(tmp_path, c, [(0, "failed"), (1, "ok"), (2, "failed"), (0, "ok"),
                                      (1, "failed"), (2, "failed")])
    p = plan(c, csv_path, retry_failed=True)
    assert [x["row_id"] for x in p.todo] == [ids[1], ids[2], ids[3]]
    assert p.retried == {ids[1], ids[2]} and (p.done, p.failed) == (3, 2)
    assert [r["status"] for r in campaign_rows(csv_path)] == ["ok", "failed", "failed"]
    assert existing_rows(csv_path) == set(ids[:3])


def test_the_latest_attempt_keeps_the_place_of_the_first():
    rows = [{"row_id": "a", "status": "failed"}, {"row_id": "b", "status": "ok"},
            {"row_id": "a", "status": "ok"}]
    assert latest_attempts(rows) == [{"row_id": "a", "status": "ok"}, {"row_id": "b", "status": "ok"}]


def test_a_retried_row_is_appended_and_the_failed_one_stays(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    csv_path = rows_csv(tmp_path, c, [(0, "failed")])
    append_row(csv_path, {"row_id": c.points()[0]["row_id"], "campaign": "t", "status": "ok"})
    text = csv_path.read_text().splitlines()
    assert len(text) == 3 and text[0] == ",".join(FIELDS)
    assert [r["status"] for r in campaign_rows(csv_path)] == ["ok"]


def test_a_csv_of_an_older_version_keeps_its_columns_when_resumed(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    csv_path = tmp_path / "old.csv"
    csv_path.write_text("row_id,campaign,status,error,algo\n"
                        f"{c.points()[0]['row_id']},t,failed,boom,ring\n")
    append_row(csv_path, {"row_id": c.points()[0]["row_id"], "campaign": "t", "status": "ok",
                          "algo": "ring", "iteration_s": 1.0})
    assert csv_path.read_text().splitlines()[-1] == f"{c.points()[0]['row_id']},t,ok,,ring"
    assert plan(c, csv_path, retry_failed=True).todo == c.points()[1:]


@pytest.mark.parametrize("text,reason", [
    ("a,b\n1,2\n", "line 1: not a campaign CSV: no column row_id, campaign, status"),
    ("", "empty; not a campaign CSV"),
    ("row_id,campaign,status\nx,t\n", "line 2: 2 fields, the header has 3"),
    ("row_id,campaign,status\nx,t,maybe\n", "line 2: status: 'maybe' is not ok or failed"),
    ("row_id,campaign,status\n,t,ok\n", "line 2: row_id: empty; every row has its point's id"),
    ("row_id,campaign,status\nx,other,ok\n", "line 2: campaign: a row of campaign 'other', not "
                                             "'t'; give this campaign its own CSV (--out)"),
    ('row_id,campaign,status\n"x,t,ok\n', "line 2: not valid CSV: unexpected end of data"),
    ("row_id,campaign,row_id,status\n", "line 1: column row_id given twice"),
])
def test_a_foreign_or_damaged_csv_is_one_line_not_a_key_error(tmp_path, text, reason):
    c = load_campaign(write(tmp_path, GOOD))
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(text)
    with pytest.raises(InputError) as exc:
        plan(c, csv_path)
    assert exc.value.problems == [f"{csv_path}: {reason}"]


def test_a_csv_that_is_not_text_is_one_line(tmp_path):
    c = load_campaign(write(tmp_path, GOOD))
    csv_path = tmp_path / "bin.csv"
    csv_path.write_bytes(b"row_id,campaign,status\n\xff\xfe\n")
    with pytest.raises(InputError) as exc:
        plan(c, csv_path)
    assert exc.value.problems == [f"{csv_path}: not UTF-8 text (byte 23 cannot be decoded)"]


def test_the_committed_campaign_csvs_are_read_with_every_attempt():
    for name in SHIPPED_IDS:
        rows = campaign_rows(ROOT / "results" / "campaigns" / f"{name}.csv", name)
        assert rows and all(r["status"] in ("ok", "failed") for r in rows)
