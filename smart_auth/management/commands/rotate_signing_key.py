"""manage.py rotate_signing_key: a new RS256 key signs from now on.

The old key stays in the JWKS, and keeps verifying what it signed, until its last token has
expired (`keys.retention_seconds()`); every process, on every host, switches to the new key
within seconds. Keys retired longer ago than that have their private half erased.
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from smart_auth import keys
from smart_auth.models import SigningKey


class Command(BaseCommand):
    help = (
        "Rotate the RS256 signing key: a new key (generated, or --pem-file) signs from now on; "
        "the old one stays published until its tokens have expired."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--pem-file",
            type=Path,
            help="PEM file of the RSA private key to use (default: generate a 2048-bit key)",
        )

    def handle(self, *args, pem_file=None, **options):
        pem = self.read_pem(pem_file) if pem_file else None
        with transaction.atomic():
            old = SigningKey.objects.select_for_update().filter(active=True).first()
            try:
                new = keys.do_rotate_signing_key(pem)
            except keys.KeyAlreadyUsed as error:
                raise CommandError(str(error)) from None
        erased = keys.do_erase_expired_keys()
        self.stdout.write(f"New signing key: {new.kid}")
        if old is not None:
            until = timezone.now() + timedelta(seconds=keys.retention_seconds())
            self.stdout.write(
                f"Retired key {old.kid} stays in the JWKS until {until:%Y-%m-%d %H:%M:%S} UTC"
            )
        configured = settings.SMART.get("SIGNING_KEY_PEM", "").strip()
        if configured and keys.key_id(configured + "\n") != new.kid:
            self.stdout.write(
                "SMART_SIGNING_KEY_PEM names an older key: it will not sign again. "
                "Set it to the new key (or leave it: the database holds the key now)."
            )
        if erased:
            self.stdout.write(f"Erased the private part of {erased} expired key(s)")

    def read_pem(self, path):
        try:
            pem = path.read_text()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            keys.load_private_pem(pem)
        except ValueError as error:
            raise CommandError(f"{path}: {error}") from None
        return pem.strip() + "\n"
