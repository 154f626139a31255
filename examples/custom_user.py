"""A conversation written in Python: subclass the pack's flapping user in your own locustfile.

Run it against the bundled server's app protocol (nothing else to install):

    .venv/bin/locust -f examples/custom_user.py --headless --ref-server-protocol app

The pack's phases, monitor, verdict and web UI tab work as with the bundled locustfile;
the bundled default user does not run beside this one. The README quotes this file.
"""

import hashlib

from flapping_pack import ConversationScript, FlapPhases, FlappingUser, Talk  # importing it turns the pack on


class AgentChat(ConversationScript):
    """Authenticates with a signature computed here, then chats with its agent during each hold (one per connection)."""

    def on_open(self, talk: Talk) -> None:
        """Wait for the greeting, authenticate, keep what the server answers."""
        talk.expect({"type": "connection_established"}, name="greeting")
        signature = hashlib.sha256(f"user-{talk.user}".encode()).hexdigest()[:16]  # computed per connection
        talk.send({"type": "auth", "token": talk.variables.token, "signature": signature})
        self.auth = talk.expect({"type": "auth_ok"}, name="auth")  # the decoded reply, kept for later steps

    def on_hold(self, talk: Talk) -> None:
        """One chat message per hold; the reply must carry what was sent."""
        content = f"hello {talk.user}:{talk.cycle}"
        talk.send({"type": "message", "content": content})
        reply = talk.expect({"type": "agent_response"}, name="agent-response")
        if reply.get("content") != content:
            raise ValueError("the agent answered another message")  # fails the session: `ValueError in on_hold`


class AgentChatUser(FlappingUser):
    """Flaps, and says what `AgentChat` says on each connection (so do the steady users and the recovery probe)."""

    script = AgentChat


__all__ = ["AgentChatUser", "FlapPhases"]
