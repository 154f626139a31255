"""Pusher Channels protocol 7 (Laravel Reverb, Soketi, Pusher), written in Python: a private channel needs a signature.

Follows "Pusher Channels Protocol" (https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/)
and its authentication of private channels (https://pusher.com/docs/channels/library_auth_reference/auth-signatures/):
the server's `pusher:connection_established` carries a `socket_id` inside a JSON string, which
the subscription's signature needs; `pusher:ping` is answered with `pusher:pong`.

    PUSHER_APP_KEY=app-key PUSHER_APP_SECRET=... .venv/bin/locust -f examples/pusher_user.py --headless \
        --host "ws://127.0.0.1:8080/app/app-key?protocol=7&client=flap&version=1"

The secret signs each subscription here, as the application's auth endpoint would; it is
never sent, logged or reported.
"""

import hashlib
import hmac
import os

from flapping_pack import ConversationScript, FlapPhases, FlappingUser, Talk  # importing it turns the pack on

APP_KEY = os.environ.get("PUSHER_APP_KEY", "app-key")
APP_SECRET = os.environ.get("PUSHER_APP_SECRET", "")


def channel_auth(socket_id: str, channel: str) -> str:
    """The `auth` of a private channel's subscription: key, then HMAC-SHA256 of `socket_id:channel`."""
    signature = hmac.new(APP_SECRET.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return f"{APP_KEY}:{signature}"


class PusherChat(ConversationScript):
    """Connects, subscribes to its private channel with a signature, pings the server during each hold."""

    def on_open(self, talk: Talk) -> None:
        """Answer the server's pings, read the socket_id, subscribe to a private channel."""
        talk.reply({"event": "pusher:pong", "data": {}}, when={"event": "pusher:ping"})  # for the whole session
        talk.expect(
            {"event": "pusher:connection_established"},
            name="connected",
            capture={"socket_id": "data.socket_id"},  # `data` is JSON inside a string: decoded on the way
        )
        self.channel = f"private-flap-{talk.user}"
        auth = channel_auth(talk.captured["socket_id"], self.channel)
        talk.send({"event": "pusher:subscribe", "data": {"channel": self.channel, "auth": auth}})
        talk.expect({"event": "pusher_internal:subscription_succeeded", "channel": self.channel}, name="subscribe")

    def on_hold(self, talk: Talk) -> None:
        """A client ping and the server's pong: one round trip per hold."""
        talk.send({"event": "pusher:ping", "data": {}})
        talk.expect({"event": "pusher:pong"}, name="ping")

    def on_close(self, talk: Talk) -> None:
        """Leave the channel before the clean close."""
        talk.send({"event": "pusher:unsubscribe", "data": {"channel": self.channel}})


class PusherUser(FlappingUser):
    """Flaps, and says what `PusherChat` says on each connection (so do the steady users and the recovery probe)."""

    script = PusherChat


__all__ = ["FlapPhases", "PusherUser"]
