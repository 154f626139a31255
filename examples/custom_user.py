"""A conversation written in Python: subclass the pack's flapping user in your own locustfile.

Run it against the bundled server's app protocol (nothing else to install):

    .venv/bin/locust -f examples/custom_user.py --headless --ref-server-protocol app

The pack's phases, monitor, verdict and web UI tab work as with the bundled locustfile;
the bundled default user does not run beside this one.
"""

import hashlib

from flapping_pack import FlapPhases, FlappingUser, Talk


class AgentChatUser(FlappingUser):
    """Authenticates with a signed token, then chats with its agent during each hold."""

    def on_open(self, talk: Talk) -> None:
        """Wait for the greeting, authenticate with a value computed here, keep what the server answers."""
        talk.expect({"type": "connection_established"}, name="greeting")
        signature = hashlib.sha256(f"user-{talk.user}".encode()).hexdigest()[:16]
        talk.send({"type": "auth", "token": talk.variables.token, "signature": signature})
        self.auth = talk.expect({"type": "auth_ok"}, name="auth")

    def on_hold(self, talk: Talk) -> None:
        """One chat message per hold; the reply must carry what was sent."""
        content = f"hello {talk.user}:{talk.cycle}"
        talk.send({"type": "message", "content": content})
        reply = talk.expect({"type": "agent_response"}, name="agent-response")
        if reply.get("content") != content:
            raise ValueError("the agent answered another message")


__all__ = ["AgentChatUser", "FlapPhases"]
