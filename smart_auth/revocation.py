"""Revocation (RFC 7009) beyond the token presented: a refresh token takes its family with it.

DOT revokes the refresh token it is given and that token's own access token. A refresh token
is one link of a chain (each refresh rotates it), and the chain is one authorization; so any
link revoked, even one rotated out already, revokes the whole family: every refresh token and
access token issued from the same code. RFC 7009 §2.1 lets a server revoke more than the token
presented, and this is what DOT's reuse protection does when an old link is *used*.
"""

import hashlib

from oauth2_provider.models import get_refresh_token_model

RefreshToken = get_refresh_token_model()


def do_revoke_token_family(token, client_id):
    """Revoke every token of the family of refresh token `token`, if it is `client_id`'s."""
    if not token or not client_id:
        return
    families = set(
        RefreshToken.objects.filter(
            token_checksum=hashlib.sha256(token.encode()).hexdigest(),
            application__client_id=client_id,
            token_family__isnull=False,
        ).values_list("token_family", flat=True)
    )
    for family in families:
        RefreshToken.revoke_family(family)
