"""`launcher down RUN`: delete one run's instances (confirmed), then its firewall and lease tokens.

The same teardown as a run's own cleanup (launcher.run.teardown): the way to finish a run whose
delete was left unconfirmed, or one a SIGKILL left behind, without touching any other run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from launcher.errors import DeleteUnconfirmed, one_line
from launcher.run import teardown
from launcher.run.detach import RECORD_POINTER
from launcher.run.record import STATE_RECORD, RunRecord
from launcher.run.spec import run_tag
from provision import firewall, tokens
from provision.cloud import Cloud
from provision.errors import ProvisionError


def take_down(cloud: Cloud, run_id: str, state_root: Path,
              say: Callable[[str], None] = lambda text: None) -> teardown.Teardown:
    """Delete what the run's tag finds; only once that is confirmed, its firewall(s) and lease
    tokens. DeleteUnconfirmed if anything may still exist. The run's record, if this machine
    has it, is updated (best effort)."""
    outcome = teardown.tear_down(cloud, run_tag(run_id), {}, status=say)
    for iid in sorted(outcome.instances):
        say(f"{'deleted' if outcome.deleted(iid) else 'NOT confirmed deleted:'} instance {iid} "
            f"({outcome.instances[iid].label})")
    if not outcome.confirmed:
        problems = [*outcome.blind_spots, *(f"{i}: {e}" for i, e in outcome.errors.items())]
        _note(state_root, run_id, "unconfirmed")
        raise DeleteUnconfirmed(f"run {run_id}: not confirmed deleted ({problems[0]}); its "
                                f"firewall and lease tokens were kept. Try again: "
                                f"launcher down {run_id} --yes")
    for fw in firewall.run_firewalls(cloud, run_id):
        try:
            firewall.delete_firewall(cloud, int(fw["id"]))
            say(f"deleted firewall {fw['id']} ({fw['label']})")
        except ProvisionError as exc:
            say(f"firewall {fw['id']} not deleted (guards nothing now): {one_line(exc)}")
    try:
        revoked = tokens.revoke_run_tokens(cloud, run_id)
        if revoked:
            say(f"revoked {len(revoked)} lease token(s)")
    except ProvisionError as exc:
        say(f"lease tokens not revoked (they expire by themselves): {one_line(exc)}")
    _note(state_root, run_id, True)
    return outcome


def _note(state_root: Path, run_id: str, deleted: bool | str) -> None:
    """Both copies of the run's record, if this machine has them: the state directory's (what
    history reads) and the one beside the output (where the pointer leads)."""
    state_dir = state_root / run_id
    paths = [state_dir / STATE_RECORD]
    try:
        paths.append(Path((state_dir / RECORD_POINTER).read_text().strip()))
    except OSError:
        pass
    for path in dict.fromkeys(paths):
        try:
            record = RunRecord.load(path)
            if record.deleted is not True:
                record.deleted = deleted
                record.save(path)
        except (OSError, ValueError, TypeError):
            continue  # no record here (another machine's run): the cloud side is what matters
