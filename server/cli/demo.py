"""``flask --app server demo generate``: a synthetic extract with planted anomalies.

Needs no database: it only writes files (see sync/generator.py and docs/registry.md).
"""

import click
from flask.cli import AppGroup
from tqdm import tqdm

from sync.areas import PRIORITY_KECAMATAN
from sync.generator import generate

cli = AppGroup("demo", help="Synthetic data for demos, tests and benchmarks.")


@cli.command("generate")
@click.option("--households", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Directory to write keluarga.jsonl / keluarga.csv + anggota.csv into.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "both"]), default="jsonl",
              show_default=True)
@click.option("--kecamatan", multiple=True,
              help="Kemendagri kecamatan code; repeat for several (default: the ten priority).")
@click.option("--progress/--no-progress", default=True)
def generate_command(households, seed, out, fmt, kecamatan, progress):
    """Write a realistic extract and its answer file anomalies.jsonl."""
    bar = tqdm(total=households, desc="families", unit=" fam", unit_scale=True,
               disable=not progress, mininterval=1.0)
    try:
        result = generate(out, households, seed, fmt, kecamatan or PRIORITY_KECAMATAN, bar)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        bar.close()
    click.echo(f"{result['households']} families, {result['anomalies']} planted anomalies")
    for name, path in result["paths"].items():
        click.echo(f"  {name}: {path}")
