"""Reading the engine's answer to an image import."""

from twin.host.images import import_errors


def test_an_import_answer_with_an_error_after_the_upload():
    answer = ('{"status":"Importing","progressDetail":{"current":512},"progress":"512B"}\r\n'
              '{"errorDetail":{"message":"archive/tar: invalid tar header"},'
              '"error":"archive/tar: invalid tar header"}\r\n')
    assert import_errors(answer) == ["archive/tar: invalid tar header"]


def test_a_successful_import_answer():
    answer = '{"status":"sha256:5d41402abc4b2a76b9719d911017c592"}\r\n'
    assert import_errors(answer) == []
    assert import_errors("") == []


def test_the_torch_tag_follows_the_wheels_and_the_worker_code():
    from twin.host.images import TORCH_REPO, torch_image_ref
    a = torch_image_ref("aa  torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl\n")
    b = torch_image_ref("bb  torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl\n")
    assert a.startswith(f"{TORCH_REPO}:") and a != b
    assert a == torch_image_ref("aa  torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl\n")


def test_pip_is_asked_for_wheels_of_the_images_python_only():
    from twin.host.images import TORCH_PYTHON, _pip_target_args
    args = _pip_target_args()
    assert "--only-binary=:all:" in args
    assert args[args.index("--python-version") + 1] == TORCH_PYTHON
    assert f"cp{TORCH_PYTHON.replace('.', '')}" in args


def test_no_torch_is_one_line_that_says_how_to_get_it():
    from twin.host.images import TORCH_REQUIREMENT, how_to_get_torch
    line = how_to_get_torch("ERROR: No matching distribution found for torch==2.13.0+cpu")
    assert "\n" not in line
    assert TORCH_REQUIREMENT in line and "make image-torch" in line and "No matching" in line
