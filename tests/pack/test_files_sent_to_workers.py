"""The master sends its files' content with its options: a worker needs none of them on its own disk."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from pack.options import FILES_KEY, OPTIONS, OptionError, attach_file_contents, config_from_options
from pack.version import VERSION, worker_refusal
from tests.support.locust_process import ROOT

CONVERSATION = ROOT / "examples" / "app-chat.yaml"


def _namespace(**values: object) -> argparse.Namespace:
    defaults = {spec.dest: spec.default for spec in OPTIONS}
    defaults.update(values)
    return argparse.Namespace(**defaults)


def test_the_master_attaches_the_conversation_files_content(tmp_path: Path) -> None:
    """attach_file_contents puts the file's path and text on the options."""
    options = _namespace(ws_conversation=str(CONVERSATION))
    attach_file_contents(options)
    assert getattr(options, FILES_KEY) == {
        "ws_conversation": {"path": str(CONVERSATION), "text": CONVERSATION.read_text()}
    }


def test_a_worker_without_the_file_runs_the_masters_conversation(tmp_path: Path) -> None:
    """A worker whose disk lacks the master's path builds the same conversation from the content sent."""
    path = tmp_path / "conversation.yaml"
    path.write_text(CONVERSATION.read_text())
    master = _namespace(ws_conversation=str(path))
    attach_file_contents(master)
    expected = config_from_options(master).client.conversation
    path.unlink()  # not on the worker's disk
    on_the_worker = _namespace(ws_conversation=str(path), **{FILES_KEY: getattr(master, FILES_KEY)})
    assert config_from_options(on_the_worker).client.conversation == expected


def test_content_for_another_path_is_not_used() -> None:
    """Content sent for one path does not stand in for another (an option changed since): the path is checked."""
    options = _namespace(
        ws_conversation="/nowhere/else.yaml",
        **{FILES_KEY: {"ws_conversation": {"path": str(CONVERSATION), "text": CONVERSATION.read_text()}}},
    )
    with pytest.raises(OptionError, match="--ws-conversation: no such file: /nowhere/else.yaml"):
        config_from_options(options)


def test_a_bad_conversation_sent_by_the_master_names_its_path() -> None:
    """Content that does not parse gets the one-line error naming the master's path."""
    options = _namespace(
        ws_conversation="/master/conv.yaml",
        **{FILES_KEY: {"ws_conversation": {"path": "/master/conv.yaml", "text": "open: [\n"}}},
    )
    with pytest.raises(OptionError, match="--ws-conversation: /master/conv.yaml: YAML syntax error"):
        config_from_options(options)


def test_a_ca_bundle_sent_by_the_master_is_trusted_from_a_local_copy() -> None:
    """--ws-ca-file's content becomes a file on the worker, loadable by ssl, whatever the master's path."""
    pem = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not pem.is_file():
        pytest.skip("no CA bundle on this machine to stand in for a private CA")
    options = _namespace(
        ws_ca_file="/master/ca.pem", **{FILES_KEY: {"ws_ca_file": {"path": "/master/ca.pem", "text": pem.read_text()}}}
    )
    local = config_from_options(options).client.ca_file
    assert local != "/master/ca.pem" and Path(local).read_text() == pem.read_text()


def test_an_unreadable_file_is_refused_on_the_master(tmp_path: Path) -> None:
    """The master cannot send a file it cannot read: one line naming the option."""
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    with pytest.raises(OptionError, match="--ws-conversation: cannot read"):
        attach_file_contents(_namespace(ws_conversation=str(folder)))


def test_only_a_different_version_is_refused() -> None:
    """The master refuses a worker's pack of another version, in one line naming both; its own version passes."""
    assert worker_refusal(VERSION, VERSION) is None
    assert worker_refusal("0.2.0", "0.1.0") == "the worker's flapping-pack is 0.1.0, the master's is 0.2.0"
    assert worker_refusal("0.2.0", None) == "the worker's flapping-pack is unknown, the master's is 0.2.0"
