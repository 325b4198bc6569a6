"""Storage for FHIR resources: JSON documents plus typed index rows extracted at write time.

The layout follows the servers that search fast (HAPI, Microsoft, Medplum): the resource JSON
is stored as text and served as is; every searchable value is copied at write time into a
narrow index table whose leading columns are (resource_type, param, value), so a search is an
index range scan joined on the resource key and never reads JSON. The same tables work on
SQLite and PostgreSQL.
"""

from django.db import models


class Resource(models.Model):
    """The current version of one resource (or a tombstone once it is deleted)."""

    resource_type = models.CharField(max_length=64)
    fhir_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    # The resource as JSON text, with id and meta.versionId/lastUpdated already set.
    # Empty for a deleted resource: its last content stays in ResourceVersion.
    content = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "fhir_id"], name="resource_type_id"),
        ]
        indexes = [
            models.Index(
                fields=["resource_type", "last_updated", "id"], name="resource_type_updated"
            ),
        ]

    def __str__(self):
        return f"{self.resource_type}/{self.fhir_id}/_history/{self.version_id}"


class ResourceVersion(models.Model):
    """Every version of every resource, deletes included, for vread and history."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="versions")
    resource_type = models.CharField(max_length=64)
    fhir_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    method = models.CharField(max_length=8)  # POST, PUT or DELETE
    content = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "version_id"], name="version_per_resource"),
        ]
        indexes = [
            models.Index(fields=["resource_type", "last_updated"], name="version_type_updated"),
            models.Index(fields=["last_updated"], name="version_updated"),
        ]

    def __str__(self):
        return f"{self.resource_type}/{self.fhir_id}/_history/{self.version_id}"


class TokenIndex(models.Model):
    """code, Coding, CodeableConcept, Identifier, ContactPoint and boolean values."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    system = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=255)

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "code", "system", "resource"],
                name="token_lookup",
            ),
        ]


class StringIndex(models.Model):
    """Strings, normalised (case and accents folded) for the default starts-with match."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    value = models.CharField(max_length=255)  # normalised
    exact = models.CharField(max_length=255)  # as written, for :exact

    class Meta:
        indexes = [
            # varchar_pattern_ops lets PostgreSQL answer LIKE 'abc%' from the index under any
            # collation; other databases ignore opclasses.
            models.Index(
                fields=["resource_type", "param", "value", "resource"],
                name="string_lookup",
                opclasses=["varchar_pattern_ops"] * 3 + ["int8_ops"],
            ),
        ]


class DateIndex(models.Model):
    """A date, dateTime, instant or Period as the [low, high] instants it covers."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    low = models.DateTimeField()
    high = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "low", "high"], name="date_lookup"),
        ]


class ReferenceIndex(models.Model):
    """A reference, split into target type and id when it points into this server."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # The reference as written when it is not a local Type/id (an absolute URL elsewhere).
    url = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "target_id", "target_type", "resource"],
                name="reference_lookup",
            ),
            # For _include/_revinclude, which go from the target back to the source.
            models.Index(fields=["target_type", "target_id"], name="reference_target"),
        ]


class CompartmentMembership(models.Model):
    """The resource belongs to Patient/{patient_id}'s compartment (R4 CompartmentDefinition)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(
                fields=["patient_id", "resource_type", "resource"], name="compartment_lookup"
            ),
        ]


class QueuedAuditEvent(models.Model):
    """An AuditEvent recorded but not yet in the store (`audit_log`).

    Recording is one narrow INSERT on every request; `audit_log.drain` later moves queued
    events into the store (resource, version and index rows) in batches, and always before
    the FHIR API reads AuditEvents, so nobody reading the trail sees the queue.
    """

    content = models.TextField()  # the event as JSON, without id and meta
