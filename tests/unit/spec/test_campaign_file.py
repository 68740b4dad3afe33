"""Campaign files as a model: every field and every sweep value checked before anything starts."""

import pytest

from controllers.run import APPS
from tests.locations import CAMPAIGNS, ROOT, TOPOS
from traffic.collectives import ALLREDUCE_ALGOS
from twin.errors import InputError
from twin.spec.campaign import (
    CONTROLLERS,
    UNSWEPT,
    CampaignSpec,
    Sweep,
    load_campaign_spec,
)
from twin.spec.schedule import from_model

GOOD = f"""name: t
topology: {TOPOS}/ci-2site.yaml
schedule: {{forward: 10ms, backward: 20ms, buckets: [1M, 1M]}}
sweep:
  algo: [ring]
"""


def write(tmp_path, text, name="c.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def problems(tmp_path, text) -> list[str]:
    f = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load_campaign_spec(f)
    return [p.removeprefix(f"{f}: ") for p in exc.value.problems]


@pytest.mark.parametrize("path", sorted(CAMPAIGNS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_campaigns_are_valid(path):
    spec, topo = load_campaign_spec(path)
    assert spec.name == path.stem and topo.name == spec.topology.stem


def test_defaults_and_what_is_not_swept():
    spec, _ = load_campaign_spec(CAMPAIGNS / "fntf-40city.yaml")
    assert (spec.iterations, spec.repeats, spec.description) == (2, 1, "")
    axes = spec.sweep.axes()
    assert list(axes) == list(UNSWEPT)
    assert axes["algo"] == ["ring", "tree"] and axes["overlap"] == [True]
    assert axes["distance_km"] == [None] and axes["controller"] == ["none"]


def test_seed_is_refused_as_an_unknown_field(tmp_path):
    (p,) = problems(tmp_path, GOOD + "seed: 7\n")
    assert p == "line 6: seed: unknown field (known: name, description, topology, schedule, " \
                "iterations, repeats, scale, delay_compensation, dilation, timeout, sweep)"


def test_the_topology_is_found_beside_the_campaign_file(tmp_path):
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "two.yaml").write_text((TOPOS / "ci-2site.yaml").read_text())
    (tmp_path / "campaigns").mkdir()
    f = write(tmp_path / "campaigns", GOOD.replace(str(TOPOS / "ci-2site.yaml"),
                                                   "../topologies/two.yaml"))
    spec, topo = load_campaign_spec(f)
    assert spec.topology == (tmp_path / "topologies" / "two.yaml").resolve()
    assert topo.name == "ci-2site"


def test_a_bad_topology_is_reported_at_the_campaign_line(tmp_path):
    bad = write(tmp_path, (TOPOS / "ci-2site.yaml").read_text().replace("lat: 30.593", "lat: 95"),
                "topo.yaml")
    ps = problems(tmp_path, GOOD.replace(str(TOPOS / "ci-2site.yaml"), "topo.yaml"))
    assert len(ps) == 1 and ps[0].startswith(f"line 2: topology: {bad}: line ")
    assert "sites[1:wuhan].lat: Input should be less than or equal to 90" in ps[0]


def test_schedule_from_a_model_description(tmp_path):
    spec, _ = load_campaign_spec(write(tmp_path, GOOD.replace(
        "{forward: 10ms, backward: 20ms, buckets: [1M, 1M]}",
        "{model: {params: 1e9, dtype: fp32, compute: 900ms, bucket: 100M}}")))
    assert spec.schedule == from_model(1e9, "fp32", 0.9, 100 * 2**20)


def test_a_bad_model_description_names_its_fields(tmp_path):
    ps = problems(tmp_path, GOOD.replace(
        "{forward: 10ms, backward: 20ms, buckets: [1M, 1M]}",
        "{model: {params: 0, dtype: fp8, compute: 1s, compute_s: 1}}"))
    assert ps == ["line 3: schedule.model.params: Input should be greater than 0",
                  "line 3: schedule.model.dtype: 'fp8' is not bf16, fp16, fp32",
                  "line 3: schedule.model.compute_s: unknown field"]


def test_scale_is_checked_when_the_file_is_read_and_kept_as_written(tmp_path):
    (p,) = problems(tmp_path, GOOD + "scale: 4000\n")
    assert p == "line 6: scale: must be in (0, 1], e.g. 0.001 or '1/1000'"
    spec, _ = load_campaign_spec(write(tmp_path, GOOD + "scale: 1/4000\n"))
    assert spec.scale == "1/4000"


@pytest.mark.parametrize("value", ["0", "-1", "true", "'3'", "1.5"])
def test_iterations_and_repeats_are_whole_numbers_from_one(tmp_path, value):
    for key in ("iterations", "repeats"):
        (p,) = problems(tmp_path, GOOD + f"{key}: {value}\n")
        assert p.startswith(f"line 6: {key}: ")


def test_a_name_must_be_usable_as_a_file_name(tmp_path):
    (p,) = problems(tmp_path, GOOD.replace("name: t", "name: ../t"))
    assert p == "line 1: name: '../t': use letters, digits, '.', '_' and '-' (it names a file)"


@pytest.mark.parametrize("key,value,reason", [
    ("distance_km", "[0]", "0 is not a distance in km (0 < d <= 40000)"),
    ("distance_km", "[40001]", "40001 is not a distance in km (0 < d <= 40000)"),
    ("distance_km", "[true]", "True is not a distance in km (0 < d <= 40000)"),
    ("distance_km", "['500']", "'500' is not a distance in km (0 < d <= 40000)"),
    ("distance_km", "[.nan]", "nan is not a distance in km (0 < d <= 40000)"),
    ("wan_rate", "[0Gbit]", "rate '0Gbit' is below 1Kbit, the smallest the twin takes"),
    ("wan_rate", "[1e999Gbit]", "rate '1e999Gbit' is above 1000Tbit, the largest the twin takes"),
    ("wan_rate", "[fast]", "cannot read rate 'fast'"),
    ("loss", "[100%]", "'100%' must be in [0, 1)"),
    ("loss", "[1]", "1 must be in [0, 1)"),
    ("algo", "[warp]", "'warp' is not ring, hd, tree or hier"),
    ("controller", "[ryu]", "'ryu' is not none, detpath or baseline"),
    ("overlap", "[yes please]", "'yes please' must be true or false"),
    ("interference", "[1]", "1 must be true or false"),
])
def test_every_sweep_value_is_checked(tmp_path, key, value, reason):
    (p,) = problems(tmp_path, GOOD.replace("  algo: [ring]", f"  {key}: [ring]".replace(
        "[ring]", value)))
    assert p == f"line 5: sweep.{key}[0]: {reason}"


@pytest.mark.parametrize("value", ["[]", "500", "null"])
def test_a_swept_parameter_needs_a_list_of_values(tmp_path, value):
    (p,) = problems(tmp_path, GOOD.replace("[ring]", value))
    assert p == "line 5: sweep.algo: must be a non-empty list of values"


def test_a_sweep_must_sweep_something(tmp_path):
    (p,) = problems(tmp_path, GOOD.replace("sweep:\n  algo: [ring]\n", "sweep: {}\n"))
    assert p == "line 4: sweep: must list at least one parameter with values"


def test_missing_fields_are_named(tmp_path):
    assert problems(tmp_path, "name: t\n") == ["topology: Field required", "schedule: Field required",
                                               "sweep: Field required"]


def test_the_sweep_accepts_every_algorithm_and_controller_of_the_one_lists():
    sweep = Sweep(algo=list(ALLREDUCE_ALGOS), controller=list(CONTROLLERS))
    assert sweep.axes()["algo"] == list(ALLREDUCE_ALGOS)
    assert CONTROLLERS == ("none", *APPS)
    for app in APPS:  # each controller app is a module the launcher can run
        assert (ROOT / "controllers" / f"{app}.py").exists()


def test_the_json_schema_describes_every_field():
    props = CampaignSpec.model_json_schema()["properties"]
    assert set(props) == {"name", "description", "topology", "schedule", "iterations", "repeats",
                          "scale", "delay_compensation", "dilation", "timeout", "sweep"}


# ---- limits of a campaign file, and what it asks of its topology ----------------------------

def test_a_sweep_of_more_points_than_a_campaign_measures_is_refused_without_planning(tmp_path):
    import time
    sweep = "".join(f"  {k}: {v}\n" for k, v in [
        ("distance_km", list(range(1, 101))), ("wan_rate", [f"{g}Gbit" for g in range(1, 101)]),
        ("loss", [f"{i / 1000}" for i in range(100)]), ("algo", ["ring", "hd", "tree", "hier"])])
    t0 = time.monotonic()
    (p,) = problems(tmp_path, GOOD.replace("  algo: [ring]\n", sweep))
    assert time.monotonic() - t0 < 5
    assert p == "line 4: sweep: the sweep plans 4000000 measurements (4000000 combinations x 1 " \
                "repeats); at most 1000 in one campaign: split it into several files"


@pytest.mark.parametrize("text,reason", [
    ("iterations: 1000\n", "line 6: iterations: Input should be less than or equal to 100"),
    ("repeats: 101\n", "line 6: repeats: Input should be less than or equal to 100"),
    ("timeout: 0s\n", "line 6: timeout: '0s' is not between 1ms and 3600s"),
    ("timeout: 2h\n", "line 6: timeout: unknown time unit in '2h' (use s, ms, us, ns)"),
])
def test_iterations_repeats_and_the_timeout_are_limited(tmp_path, text, reason):
    assert problems(tmp_path, GOOD + text) == [reason]


def test_the_timeout_is_read_as_a_time(tmp_path):
    spec, _ = load_campaign_spec(write(tmp_path, GOOD + "timeout: 500ms\n"))
    assert spec.timeout == 0.5
    assert load_campaign_spec(write(tmp_path, GOOD))[0].timeout == 60.0


@pytest.mark.parametrize("key,values,reason", [
    ("algo", "[ring, hier, ring]", "'ring' is listed twice; each value once"),
    ("distance_km", "[1000, 1000.0]", "1000.0 is listed twice; each value once"),
    ("wan_rate", "[400Gbit, 400 Gbit]", "'400 Gbit' is '400Gbit' again; each value once"),
    ("loss", "[0.1%, 0.001]", "'0.001' is '0.1%' again; each value once"),
])
def test_a_value_listed_twice_would_plan_one_row_id_twice(tmp_path, key, values, reason):
    (p,) = problems(tmp_path, GOOD.replace("  algo: [ring]", f"  {key}: {values}"))
    assert p == f"line 5: sweep.{key}: {reason}"


def test_the_campaign_scale_must_leave_every_rate_emulable(tmp_path):
    ps = problems(tmp_path, GOOD + "scale: 1/1e7\n")
    assert ps[0] == "line 6: scale: sites[0:beijing].fabric.rate: 400Gbit at scale 1e-07 is " \
                    "40Kbit emulated; the twin needs at least 100Kbit (a 9000-byte frame then " \
                    "takes 0.72 s)"
    assert [p.split(": ")[2] for p in ps] == ["sites[0:beijing].fabric.rate", "sites[1:wuhan].fabric.rate",
                                             "links[0:beijing-wuhan].rate", "reservations[0:job].rate"]
    (p,) = problems(tmp_path, GOOD.replace("  algo: [ring]", "  wan_rate: [400Gbit, 200Mbit]")
                    + "scale: 1/4000\n")
    assert p == "line 5: sweep.wan_rate[1]: at scale 0.00025 its reservations' share is 25Kbit " \
                "emulated; the twin needs at least 100Kbit"


def test_the_emulated_gradient_must_fit_in_memory(tmp_path):
    (p,) = problems(tmp_path, GOOD.replace("buckets: [1M, 1M]", "buckets: [1000G, 1000G]"))
    assert p == "line 3: schedule: the gradient is 2,048 MiB per rank at scale 0.001; at most " \
                "1,024 MiB (each rank holds it in memory)"


def test_interference_needs_a_spare_worker_in_every_site_before_anything_starts(tmp_path):
    one = (TOPOS / "ci-2site.yaml").read_text().replace("workers: 2", "workers: 1")
    write(tmp_path, one, "one.yaml")
    (p,) = problems(tmp_path, GOOD.replace(str(TOPOS / "ci-2site.yaml"), "one.yaml").replace(
        "  algo: [ring]", "  interference: [false, true]"))
    assert p == "line 5: sweep.interference: needs at least 2 workers per site (the last one " \
                "carries the interference); beijing, wuhan of ci-2site has 1"

def test_a_campaign_dilation_outside_the_range_is_one_line(tmp_path):
    (p,) = problems(tmp_path, GOOD + "dilation: 0.5\n")
    assert p.startswith("line 6: dilation:") and "time dilation must be in [1, 64]" in p, p
