"""The Node.js that jsii runs the CDK on: quiet about its end of life in the processes this project starts.

Importing aws_cdk starts a Node process through jsii, which prints a boxed banner on stderr when Node's major version
is past its end of life (or past jsii's support of it). Which Node runs is the machine's choice (the README asks for
18 or newer); the banner would otherwise open the output of every synth and of `mlops pipeline definition`, also
where they are started directly instead of through the Makefile. Stdlib only: it runs before aws_cdk is imported.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import MutableMapping

# A comma-separated list of Node majors whose end-of-life banner jsii leaves out.
END_OF_LIFE_VARIABLE = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
# Any value: no banner for a Node past its end of life that jsii still supports for a while.
DEPRECATED_VARIABLE = "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"
# jsii starts this program instead of `node` when it is set.
NODE_VARIABLE = "JSII_NODE"
_VERSION = re.compile(r"v(?P<major>\d+)\.\d+\.\d+\S*")


def node_major(environ: MutableMapping[str, str]) -> str | None:
    """The major version of the Node that jsii will start, or None when it cannot tell (jsii then says why)."""
    try:
        completed = subprocess.run(
            [environ.get(NODE_VARIABLE, "node"), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.fullmatch(completed.stdout.strip())
    return match["major"] if match else None


def silence_end_of_life_banner(environ: MutableMapping[str, str] = os.environ) -> None:
    """Adds the running Node's major to the silenced ones (keeping any listed already); call it before the first
    import of aws_cdk, whose Node process reads the variables once, at its start."""
    major = node_major(environ)
    if major is None:
        return
    listed = [entry.strip() for entry in environ.get(END_OF_LIFE_VARIABLE, "").split(",") if entry.strip()]
    if major not in listed:
        environ[END_OF_LIFE_VARIABLE] = ",".join([*listed, major])
    environ.setdefault(DEPRECATED_VARIABLE, "1")
