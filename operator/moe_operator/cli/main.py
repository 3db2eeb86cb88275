"""moectl entry point.

Exit codes of `moectl validate`: 0 every plan feasible, 1 some plan infeasible, 2 unreadable or
schema-invalid input (each problem printed as `field.path: reason`, never a traceback).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Column, Table

from ..api.crd_yaml import render_crd_yaml, render_peering_crds_yaml, render_scaler_crd_yaml
from ..capacity.catalog import CatalogError, gpu_catalog, model_catalog
from ..capacity.evaluate import evaluate
from ..capacity.hf_import import HFConfigError, architecture_from_hf
from ..capacity.report_json import report_to_json
from .load import InputError, load_deployments
from .render import print_report

app = typer.Typer(help="moectl: plan, validate and operate Mixture-of-Experts inference deployments.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
catalog_app = typer.Typer(help="List the GPU and model catalogs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

EXIT_FEASIBLE, EXIT_INFEASIBLE, EXIT_BAD_INPUT = 0, 1, 2


class CertSource(str, Enum):
    generate = "generate"
    secret = "secret"
    files = "files"


class Output(str, Enum):
    text = "text"
    json = "json"


def _fail_input(problems: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": "invalid input", "problems": problems}, indent=2))
    else:
        err = Console(stderr=True)
        err.print("[bold red]invalid input[/]")
        for p in problems:
            err.print(f"  {p}", markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def validate(
    file: Annotated[str, typer.Option("-f", "--file", help="MoEDeployment YAML (several documents allowed; - for stdin).")],
    output: Annotated[Output, typer.Option("-o", "--output", help="text or json.")] = Output.text,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Write the per-stage memory chart to this .png or .svg.")] = None,
) -> None:
    """Run the capacity model on a plan and print its report and verdict."""
    as_json = output == Output.json
    try:
        deployments = load_deployments(file)
        reports = [evaluate(d.spec, d.metadata.name) for d in deployments]
    except InputError as err:
        _fail_input(err.problems, as_json)
        return
    except CatalogError as err:
        _fail_input([f"{err.field_path}: {err.reason}"], as_json)
        return
    if as_json:
        docs = [report_to_json(r) for r in reports]
        typer.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        console = Console()
        for r in reports:
            print_report(r, console)
    if plot:
        try:
            from .plot import plot_memory
        except ModuleNotFoundError as err:
            Console(stderr=True).print(f"--plot needs matplotlib ({err}): pip install 'moe-operator[plot]'", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT)

        for i, r in enumerate(reports):
            target = plot if len(reports) == 1 else str(Path(plot).with_stem(f"{Path(plot).stem}-{i}-{r.name}"))
            plot_memory(r, target)
    raise typer.Exit(EXIT_FEASIBLE if all(r.feasible for r in reports) else EXIT_INFEASIBLE)


@app.command("import-hf")
def import_hf(config: Annotated[Path, typer.Argument(help="A Hugging Face config.json.")]) -> None:
    """Print the `spec.model.architecture` block for a Hugging Face config.json."""
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
        arch = architecture_from_hf(cfg)
    except (OSError, json.JSONDecodeError, HFConfigError) as err:
        Console(stderr=True).print(f"[red]{config}[/]: {err}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(yaml.safe_dump({"architecture": arch}, sort_keys=False), nl=False)


@app.command()
def crd(
    peering: Annotated[bool, typer.Option("--peering", help="Print kopf's peering CRDs instead (for active/standby replicas).")] = False,
    scaler: Annotated[bool, typer.Option("--scaler", help="Print the MoERoleScaler CRD instead.")] = False,
) -> None:
    """Print the MoEDeployment CustomResourceDefinition generated from the API models."""
    text = render_peering_crds_yaml() if peering else render_scaler_crd_yaml() if scaler else render_crd_yaml()
    typer.echo(text, nl=False)


@app.command()
def run(
    namespace: Annotated[Optional[list[str]], typer.Option("-n", "--namespace", help="Watch this namespace (repeatable).")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces", help="Watch every namespace.")] = False,
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig", help="Kubeconfig file; default $KUBECONFIG or in-cluster.")] = None,
    webhook: Annotated[bool, typer.Option("--webhook/--no-webhook", help="Serve the validating admission webhook.")] = True,
    webhook_address: Annotated[str, typer.Option("--webhook-address", help="Address the webhook listens on.")] = "127.0.0.1",
    webhook_port: Annotated[int, typer.Option("--webhook-port", help="Port the webhook listens on.")] = 9443,
    webhook_host: Annotated[Optional[str], typer.Option("--webhook-host", help="Host the API server uses to reach the webhook.")] = None,
    webhook_service: Annotated[Optional[str], typer.Option("--webhook-service", help="NAMESPACE/NAME of the in-cluster webhook Service.")] = None,
    webhook_cert_source: Annotated[CertSource, typer.Option("--webhook-cert-source", help="generate: made at start (development); secret: kept in --webhook-cert-secret, shared by replicas and rotated; files: tls.crt/tls.key read from --webhook-cert-dir (cert-manager), reloaded when they change.")] = CertSource.generate,
    webhook_cert_dir: Annotated[str, typer.Option("--webhook-cert-dir", help="Where the webhook's certificate files are written (generate, secret) or read (files).")] = "/tmp/moe-operator-webhook",
    webhook_cert_secret: Annotated[Optional[str], typer.Option("--webhook-cert-secret", help="NAMESPACE/NAME of the Secret that keeps the webhook certificate (--webhook-cert-source secret).")] = None,
    webhook_cert_check_seconds: Annotated[float, typer.Option("--webhook-cert-check-seconds", help="How often the secret-kept certificate is checked: renewed a third of its life before expiry, followed when another replica renewed it, caBundle re-patched.")] = 60.0,
    webhook_config: Annotated[Optional[str], typer.Option("--webhook-config", help="ValidatingWebhookConfiguration whose caBundle the operator keeps in step with its certificate.")] = None,
    manage_webhook_config: Annotated[bool, typer.Option("--manage-webhook-config/--no-manage-webhook-config",
                                                        help="Create and update the ValidatingWebhookConfiguration (needs RBAC for it).")] = True,
    peering: Annotated[Optional[str], typer.Option("--peering", help="Peering name for active/standby replicas (needs kopf's peering CRDs: moectl crd --peering).")] = None,
    priority: Annotated[Optional[int], typer.Option("--priority", help="Peering priority: the highest live one is active, the others stand by. Default with --peering: random, so identical replicas never tie (kopf pauses all on a tie).")] = None,
    resync_seconds: Annotated[float, typer.Option("--resync-seconds", help="Reconcile every deployment at least this often.")] = 60.0,
    prometheus_url: Annotated[Optional[str], typer.Option("--prometheus-url", help="Prometheus the planner reads when a spec names none.")] = None,
    metrics_address: Annotated[str, typer.Option("--metrics-address", help="Serve the operator's /metrics here (HOST:PORT; '' to disable).")] = "127.0.0.1:8080",
    liveness: Annotated[Optional[str], typer.Option("--liveness", help="Serve kopf's liveness probe here, e.g. http://0.0.0.0:8081/healthz.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Run the operator: admission webhook, one reconcile loop per MoEDeployment."""
    import asyncio
    import logging
    import os
    import secrets

    import kopf

    from ..handlers import operator as handlers

    if not namespace and not all_namespaces:
        Console(stderr=True).print("give --namespace NS (repeatable) or --all-namespaces")
        raise typer.Exit(EXIT_BAD_INPUT)
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = handlers.OperatorConfig(
        kubeconfig=kubeconfig, resync_seconds=resync_seconds, webhook=webhook, webhook_address=webhook_address,
        webhook_port=webhook_port, webhook_host=webhook_host, webhook_service=webhook_service,
        webhook_cert_dir=webhook_cert_dir, webhook_cert_source=webhook_cert_source.value,
        webhook_cert_secret=webhook_cert_secret, webhook_config=webhook_config, webhook_cert_check_seconds=webhook_cert_check_seconds, webhook_managed=manage_webhook_config,
        prometheus_url=prometheus_url, metrics_address=metrics_address or None)
    if webhook_cert_source is CertSource.secret and (not webhook_cert_secret or "/" not in webhook_cert_secret):
        Console(stderr=True).print("--webhook-cert-source secret needs --webhook-cert-secret NAMESPACE/NAME")
        raise typer.Exit(EXIT_BAD_INPUT)
    if priority is None:
        priority = secrets.randbelow(2**31 - 1) + 1 if peering else 0
    if webhook:
        handlers.register_admission(kopf.get_default_registry())
    asyncio.run(kopf.operator(
        clusterwide=all_namespaces, namespaces=namespace or (), standalone=peering is None, peering_name=peering, priority=priority,
        liveness_endpoint=liveness, memo=kopf.Memo(config=cfg)))


@app.command()
def tree(
    name: Annotated[str, typer.Argument(help="MoEDeployment name.")],
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig")] = None,
) -> None:
    """Show a deployment's status and its pod groups: role, replica group, stage, pod, node, GPUs."""
    from .tree import print_tree

    raise typer.Exit(print_tree(name, namespace, kubeconfig, Console()))


@app.command("simulate-engine")
def simulate_engine(
    file: Annotated[str, typer.Option("-f", "--file", help="The MoEDeployment the engines serve (its spec drives the numbers).")],
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig", help="Find the deployment's pods in this cluster.")] = None,
    static: Annotated[Optional[str], typer.Option("--static", help="No cluster: simulate ROLE=N[,ROLE=N] replica groups.")] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help="vllm or sglang metric names; default: spec.engine.kind.")] = None,
    address: Annotated[str, typer.Option("--address")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 9400,
    requests_per_second: Annotated[float, typer.Option("--requests-per-second", help="Initial load, whole deployment.")] = 0.0,
    skew: Annotated[float, typer.Option("--skew", help="Zipf exponent of expert load (0 = uniform).")] = 0.0,
    expert_layers: Annotated[int, typer.Option("--expert-layers", help="MoE layers to publish per-expert counters for.")] = 8,
    targets_file: Annotated[Optional[str], typer.Option("--targets-file", help="Write a Prometheus file_sd target for this server here.")] = None,
) -> None:
    """Serve vLLM/SGLang metrics for a deployment's pods at a load you set (POST /load), without GPUs."""
    import threading

    from ..kube.clients import api_client
    from ..sim.discovery import cluster_pods, static_pods
    from ..sim.server import EngineSimulator, serve

    try:
        (deployment,) = load_deployments(file)
    except (InputError, ValueError) as err:
        _fail_input(getattr(err, "problems", [str(err)]), False)
        return
    name = deployment.metadata.name
    if static:
        replicas = {k: int(v) for k, v in (part.split("=", 1) for part in static.split(","))}
        pods = static_pods(namespace, name, replicas)
    else:
        pods = cluster_pods(api_client(kubeconfig), namespace, name)
    sim = EngineSimulator(deployment.spec, engine or str(deployment.spec.engine.kind), pods, requests_per_second, skew, expert_layers)
    server = serve(sim, address, port)
    bound = f"{address}:{server.server_address[1]}"
    if targets_file:
        Path(targets_file).write_text(json.dumps([{"targets": [bound], "labels": {"job_role": "moe-engine-simulator"}}]))
    Console(stderr=True).print(f"simulating {sim.engine} engines of {namespace}/{name} on http://{bound}/metrics; "
                               f"POST http://{bound}/load {{\"requestsPerSecond\": R, \"skew\": S}}")
    threading.Event().wait()


@app.command()
def rules(prometheus_rule: Annotated[bool, typer.Option("--prometheus-rule", help="As a Prometheus Operator PrometheusRule.")] = False) -> None:
    """Print the recording and alerting rules for MoE deployments (a Prometheus rules file)."""
    from ..monitoring.rules import prometheus_rule as as_crd
    from ..monitoring.rules import rule_groups

    header = "# Generated from operator/moe_operator/monitoring/rules.py by `moectl rules` (make generate). Do not edit by hand.\n"
    typer.echo(header + yaml.safe_dump(as_crd() if prometheus_rule else rule_groups(), sort_keys=False, width=140), nl=False)


@app.command()
def dashboard() -> None:
    """Print the Grafana dashboard for MoE deployments (JSON, generated with grafana-foundation-sdk)."""
    try:
        from ..monitoring.dashboards import overview_dashboard
    except ModuleNotFoundError as err:
        Console(stderr=True).print(f"moectl dashboard needs grafana-foundation-sdk ({err}): pip install 'moe-operator[dashboards]'", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT)

    typer.echo(json.dumps(overview_dashboard(), indent=2, sort_keys=True))


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="MoEDeployment name.")],
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig")] = None,
    prometheus_url: Annotated[Optional[str], typer.Option("--prometheus-url", help="Show observed throughput and expert CV from here.")] = None,
    watch: Annotated[bool, typer.Option("-w", "--watch", help="Keep refreshing until Ctrl-C.")] = False,
    interval_seconds: Annotated[float, typer.Option("--interval", help="Refresh period with --watch, in seconds.")] = 5.0,
) -> None:
    """One deployment at a glance: roles, groups, pods per stage, GPUs, predicted vs observed throughput, memory, expert CV."""
    from .status import run_status

    raise typer.Exit(run_status(name, namespace, kubeconfig, prometheus_url, watch, interval_seconds, Console()))


@catalog_app.command("gpus")
def catalog_gpus() -> None:
    """GPUs the capacity model knows (per GPU, dense peaks)."""
    t = Table("memory MiB", "HBM GB/s", "BF16 TFLOP/s", "FP8 TFLOP/s", "FP4 TFLOP/s", "NVLink GB/s", "network Gb/s", "node label")
    t.columns.insert(0, Column("name", no_wrap=True))
    for name, g in gpu_catalog().items():
        t.add_row(name, str(g["memoryMiB"]), str(g["memoryBandwidthGBps"]), str(g["tflops"]["bf16"]), str(g["tflops"]["fp8"]),
                  str(g["tflops"]["fp4"]), str(g["nvlinkGBps"]), str(g["networkGbps"]), g["nodeLabel"])
    Console().print(t)


@catalog_app.command("models")
def catalog_models() -> None:
    """Model presets and their published parameter counts."""
    t = Table("layers", "hidden", "experts (top-k)", "attention", "weights", "published total / active")
    t.columns.insert(0, Column("preset", no_wrap=True))
    for name, m in model_catalog().items():
        a, p = m["architecture"], m["published"]
        t.add_row(name, str(a["layers"]), str(a["hiddenSize"]), f"{a['experts']} ({a['expertsPerToken']})", a["attention"],
                  m.get("weightDtype", "bf16"), f"{p['totalParamsB']}B / {p['activeParamsB']}B")
    Console().print(t)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
