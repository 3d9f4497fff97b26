"""The messages an aiosmtpd Mailbox handler stored in a Maildir, as JSON: for each, its
envelope headers and its text and HTML parts decoded (quoted-printable, base64, charsets),
by Python's own email package, independent of the sender.

    python3 read_maildir.py DIR  ->  [{"from", "to", "subject", "text", "html"}, ...]
"""

import json
import mailbox
import sys
from email import policy


def parts(message):
    text = html = None
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = part.get_content()
        elif kind == "text/html" and html is None:
            html = part.get_content()
    return text, html


def main(path):
    box = mailbox.Maildir(path, factory=None, create=False)
    out = []
    for key in sorted(box.keys()):
        with box.get_file(key) as f:
            from email import message_from_binary_file

            message = message_from_binary_file(f, policy=policy.default)
        text, html = parts(message)
        out.append(
            {
                "from": str(message["From"]),
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "text": text,
                "html": html,
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
