"""moectl: exit codes, the stable JSON shape, readable errors, plots and import-hf."""

import json
import pathlib
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from moe_operator.cli.main import app
from tests.builders import doc

ROOT = pathlib.Path(__file__).resolve().parents[2]
runner = CliRunner()


def _write(tmp_path, d, name="plan.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return str(p)


def test_feasible_plan_exits_0_with_the_documented_json_shape(tmp_path):
    res = runner.invoke(app, ["validate", "-f", _write(tmp_path, doc()), "-o", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["feasible"] is True and out["violations"] == [] and isinstance(out["warnings"], list)
    assert set(out["model"]) >= {"totalParams", "activeParams", "kvCacheBytesPerToken", "flopsPerToken"}
    assert out["totalGPUs"] == 2
    role = out["roles"]["aggregated"]
    assert set(role) >= {"replicas", "gpusPerReplica", "gpus", "maxConcurrentSequencesAtMaxLength", "tokensPerSecondPerGPU",
                         "ttftMilliseconds", "tpotMilliseconds", "communicationFraction", "stages"}
    stage = role["stages"][0]
    assert set(stage) >= {"index", "layers", "gpus", "pods", "expertsPerGPUPerLayer", "expertInstancesPerGPU",
                          "memoryBytesPerGPU", "memoryUtilizationPercent"}
    mem = stage["memoryBytesPerGPU"]
    assert set(mem) == {"weights", "kvCache", "activations", "communication", "runtime", "total"}
    assert abs(mem["total"] - sum(v for k, v in mem.items() if k != "total")) <= 5


def test_infeasible_plan_exits_1_and_lists_violations(tmp_path):
    res = runner.invoke(app, ["validate", "-f", str(ROOT / "deploy/examples/infeasible/memory-exceeded.yaml"), "-o", "json"])
    assert res.exit_code == 1
    v = json.loads(res.output)["violations"][0]
    assert v["code"] == "MemoryExceeded" and v["role"] == "aggregated" and v["stage"] == 0


def test_schema_errors_exit_2_with_field_path_and_no_traceback(tmp_path):
    bad = doc(roles={"aggregated": {"parallelism": {"tensor": 0}}})
    res = runner.invoke(app, ["validate", "-f", _write(tmp_path, bad)])
    assert res.exit_code == 2
    assert "spec.roles.aggregated.parallelism.tensor" in res.output and "Traceback" not in res.output


def test_unknown_preset_exits_2_naming_the_field(tmp_path):
    res = runner.invoke(app, ["validate", "-f", _write(tmp_path, doc(model={"preset": "gpt-5"})), "-o", "json"])
    assert res.exit_code == 2
    assert json.loads(res.output)["problems"][0].startswith("spec.model.preset: unknown model preset 'gpt-5'")


def test_unreadable_input_exits_2(tmp_path):
    (tmp_path / "broken.yaml").write_text("spec: [unclosed")
    assert runner.invoke(app, ["validate", "-f", str(tmp_path / "broken.yaml")]).exit_code == 2
    assert runner.invoke(app, ["validate", "-f", str(tmp_path / "missing.yaml")]).exit_code == 2
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert runner.invoke(app, ["validate", "-f", str(tmp_path / "list.yaml")]).exit_code == 2


def test_text_report_says_per_gpu_per_replica_and_per_role(tmp_path):
    res = runner.invoke(app, ["validate", "-f", str(ROOT / "deploy/examples/deepseek-v3-pipeline.yaml")], env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    for phrase in ("tokens/s per GPU", "tokens/s per replica", "tokens/s whole role", "memory per GPU", "stage 1",
                   "routed experts per GPU per layer", "expert instances per GPU"):
        assert phrase in res.output


def test_plot_writes_a_png_and_an_svg(tmp_path):
    for suffix in ("png", "svg"):
        target = tmp_path / f"memory.{suffix}"
        res = runner.invoke(app, ["validate", "-f", str(ROOT / "deploy/examples/qwen3-235b-a22b-disaggregated.yaml"), "--plot", str(target)])
        assert res.exit_code == 0 and target.stat().st_size > 1000


def test_import_hf_round_trips_a_preset(tmp_path):
    # DeepSeek-V3's config.json keys (huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json), abridged
    cfg = {"num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128, "num_key_value_heads": 128,
           "vocab_size": 129280, "tie_word_embeddings": False, "n_routed_experts": 256, "num_experts_per_tok": 8,
           "moe_intermediate_size": 2048, "intermediate_size": 18432, "n_shared_experts": 1, "first_k_dense_replace": 3,
           "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    res = runner.invoke(app, ["import-hf", str(tmp_path / "config.json")])
    assert res.exit_code == 0, res.output
    arch = yaml.safe_load(res.output)["architecture"]
    d = doc(model={"preset": None, "architecture": arch, "weightDtype": "fp8"},
            roles={"aggregated": {"parallelism": {"tensor": 8, "pipeline": 2, "expert": 8}}}, hardware={"gpu": "H200-SXM"})
    imported = json.loads(runner.invoke(app, ["validate", "-f", _write(tmp_path, d), "-o", "json"]).output)
    preset = json.loads(runner.invoke(app, ["validate", "-f", _write(tmp_path, doc(
        model={"preset": "deepseek-v3"}, roles=d["spec"]["roles"], hardware={"gpu": "H200-SXM"}), "p.yaml"), "-o", "json"]).output)
    assert imported["model"]["totalParams"] == preset["model"]["totalParams"]


def test_import_hf_missing_key_exits_2(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    res = runner.invoke(app, ["import-hf", str(tmp_path / "config.json")])
    assert res.exit_code == 2 and "num_attention_heads" in res.output


def test_console_script_is_installed():
    moectl = pathlib.Path(sys.executable).parent / "moectl"
    out = subprocess.run([str(moectl), "catalog", "models"], capture_output=True, text=True, check=True).stdout
    assert "deepseek-v3" in out and "gpt-oss-120b" in out
