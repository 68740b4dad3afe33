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
                "iterations, repeats, scale, sweep)"


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
    ("distance_km", "[0]", "0 is not a distance in km (0 < d <= 20000)"),
    ("distance_km", "[20001]", "20001 is not a distance in km (0 < d <= 20000)"),
    ("distance_km", "[true]", "True is not a distance in km (0 < d <= 20000)"),
    ("distance_km", "['500']", "'500' is not a distance in km (0 < d <= 20000)"),
    ("wan_rate", "[0Gbit]", "rate '0Gbit' is below 1Kbit, the smallest the twin takes"),
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
                          "scale", "sweep"}
