"""`lmtune chat`: an interactive conversation that keeps the history and streams each answer as it is made."""

from __future__ import annotations

import sys
from collections.abc import Callable

from lmtune.generation.generate import Generator, Settings

HELP = "type a message; /reset forgets the conversation, /exit (or Ctrl-D) leaves"


def chat_loop(generator: Generator, settings: Settings, read: Callable[[str], str] = input,
              write: Callable[[str], object] = sys.stdout.write) -> list[dict]:
    """Runs until /exit or end of input; returns the conversation (for tests and transcripts)."""
    history: list[dict] = []
    write(f"{HELP}\n")
    while True:
        try:
            line = read("you> ")
        except EOFError:
            write("\n")
            break
        command = line.strip()
        if command in ("/exit", "/quit"):
            break
        if command == "/reset":
            history = []
            write("(conversation cleared)\n")
            continue
        if not command:
            continue
        history.append({"role": "user", "content": line})
        write("assistant> ")
        pieces = []
        for piece in generator.stream(generator.prompt(history), settings):
            pieces.append(piece)
            write(piece)
            sys.stdout.flush()
        write("\n")
        history.append({"role": "assistant", "content": "".join(pieces).strip()})
    return history
