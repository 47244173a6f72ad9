"""Tables of the core. Import this package to register every model on ``Base.metadata``."""

from sync.models.area import Area
from sync.models.assignment import Assignment, Round
from sync.models.conflict import Conflict
from sync.models.feed import FeedEntry, FeedState
from sync.models.form import FormVersion
from sync.models.monitoring import MonitoringCount, MonitoringDirty, MonitoringFamily
from sync.models.openrosa import OpenRosaFile, OpenRosaKey, OpenRosaSubmission, OpenRosaXForm
from sync.models.progress import EnumeratorLoad, ProgressCount
from sync.models.registry import (
    Anggota,
    Import,
    Keluarga,
    KeluargaVersion,
    SharedNik,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
)
from sync.models.review import ReviewDecision
from sync.models.scheduler import SchedulerLease
from sync.models.visit import Photo, SyncBatch, Visit, VisitPhoto

__all__ = [
    "Area", "Assignment", "Conflict", "Round", "FeedEntry", "FeedState", "FormVersion",
    "Anggota", "Import", "Keluarga", "KeluargaVersion", "SharedNik", "VerifiedChange",
    "VerifiedRecord", "VerifiedVersion", "ReviewDecision", "Photo", "SyncBatch", "Visit",
    "VisitPhoto", "ProgressCount", "EnumeratorLoad", "MonitoringCount", "MonitoringDirty",
    "MonitoringFamily", "OpenRosaKey", "OpenRosaXForm", "OpenRosaSubmission", "OpenRosaFile",
    "SchedulerLease",
]
