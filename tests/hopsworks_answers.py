"""What the Hopsworks service answers in each case it decides, and where that answer comes from.

The double (tests/hopsworks_double.py) builds every error it raises for one of these cases from this
table, and tests/code/test_hopsworks_answers.py provokes each case on the double and checks the
answer against the row, so the double cannot drift from the service unnoticed.

Sources: the public backend `logicalclocks/hopsworks` at 2b1cb50 (Feb 2025; hosted Serverless runs a
newer, closed build whose client, hopsworks 5.2.1, still relies on these codes), paths relative to its
root, abbreviated:
  RESTCodes         hopsworks-rest-utils/src/main/java/io/hops/hopsworks/restutils/RESTCodes.java
  DatasetResource   hopsworks-api/src/main/java/io/hops/hopsworks/api/dataset/DatasetResource.java
  DatasetHelper     hopsworks-common/src/main/java/io/hops/hopsworks/common/dataset/util/DatasetHelper.java
  DatasetController hopsworks-common/src/main/java/io/hops/hopsworks/common/dataset/DatasetController.java
  DFSOps            hopsworks-common/src/main/java/io/hops/hopsworks/common/hdfs/DistributedFileSystemOps.java
  ModelsResource    hopsworks-api/src/main/java/io/hops/hopsworks/api/modelregistry/models/ModelsResource.java
  FeaturegroupController, FeatureViewController  hopsworks-common/.../common/featurestore/...
  ApiKeyFilter, ApiKeyUtilities  hopsworks-api-auth/src/main/java/io/hops/hopsworks/api/auth/key/
  ProjectAuthFilter hopsworks-api/src/main/java/io/hops/hopsworks/api/filter/ProjectAuthFilter.java
  ThrowableMapper   hopsworks-rest-utils/src/main/java/io/hops/hopsworks/restutils/ThrowableMapper.java
and, for what the client decides itself (no HTTP status), the installed client's own source.
The body of a REST error is {"errorCode", "errorMsg", "usrMsg"} (RESTException.buildJsonResponse,
RESTException:73-91); the filters send errorCode and errorMsg only.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Answer:
    """One case: the HTTP status and error code the service answers (None: no REST error), and its source."""

    status: int | None
    reason: str
    code: int | None
    message: str
    source: str


ANSWERS: dict[str, Answer] = {
    "missing path": Answer(
        400, "Bad Request", 110018, "Path not found",
        "RESTCodes:267 PATH_NOT_FOUND; DatasetResource.getByPath:189 -> DatasetHelper.checkFileExist:153-157"),
    "missing dataset": Answer(
        400, "Bad Request", 110011, "DataSet not found.",
        "RESTCodes:259 DATASET_NOT_FOUND; DatasetHelper.getDatasetPath:97-102"),
    "directory exists": Answer(
        400, "Bad Request", 110047, "A sub-directory with the same name already exists.",
        "RESTCodes:311 DATASET_SUBDIR_ALREADY_EXISTS; DatasetController.createSubDirectory:273-276"),
    "parent missing": Answer(
        500, "Internal Server Error", 120000, "A generic error occurred.",
        "DatasetController.createSubDirectory:279-283 throws IllegalArgumentException inside a @Stateless bean "
        "(DatasetController:122), called from DatasetResource.postByPath:276 through the container, which turns a "
        "system exception into an EJBException for its caller; ThrowableMapper.toResponse:46-91 has no branch for "
        "that (its IllegalArgumentException one, 422, never sees it) -> RESTApiThrowableMapper.handleUnknownException "
        "-> RESTCodes:804 UNKNOWN_ERROR, the message as devMsg only (inferred from the EJB spec, not observed)"),
    "delete a missing path": Answer(
        204, "No Content", None, "",
        "DatasetResource.delete:448-459 -> DatasetController.delete:1154 -> DFSOps.rm:305-311 (true when absent)"),
    "missing model version": Answer(
        404, "Not Found", 360000, "No model found for provided name and version.",
        "RESTCodes:2142-2143 MODEL_NOT_FOUND; ModelsResource.get:164-177"),
    "missing feature group": Answer(
        404, "Not Found", 270009, "Featuregroup wasn't found.",
        "RESTCodes:1344 FEATUREGROUP_NOT_FOUND; FeaturegroupController.verifyFeaturegroupNameVersion:774-779"),
    "missing feature view": Answer(
        404, "Not Found", 270181, "Feature view wasn't found.",
        "RESTCodes:1607 FEATURE_VIEW_NOT_FOUND; FeatureViewController.getByNameVersionAndFeatureStore:215-222"),
    "view in use": Answer(
        400, "Bad Request", None, "The feature view is used by a model or a deployment",
        "closed backend, Hopsworks 4.8 on (FSTORE-1859): the client's FeatureView.delete(force=False) 'will raise an "
        "error if the feature view is in use' by models or deployments (hsfs/feature_view.py, delete; hopsworks-api "
        "60b8c5b); the public backend predates it, so this status, code and message are the double's stand-in, "
        "not the service's"),
    "no scope": Answer(
        403, "Forbidden", 320004, "No valid scope found for this invocation",
        "RESTCodes:1943 KEY_SCOPE_CONTROL_EXCEPTION; ApiKeyFilter.checkScope:122-130, abort at 96-99"),
    "wrong key": Answer(
        401, "Unauthorized", 320012, "Invalid or incorrect API key.",
        "RESTCodes:1953 KEY_INVALID (a key without its '.' or with a wrong secret; a prefix the database does not "
        "know is 320013); ApiKeyUtilities.getApiKey:39-53"),
    "missing project": Answer(
        404, "Not Found", 150004, "Project wasn't found.",
        "RESTCodes:71 PROJECT_NOT_FOUND, sent as 404 by ProjectAuthFilter:91-96"),
    "not materialised": Answer(
        None, "", None, "No commits found",
        "Feature Query Service (closed source) over Arrow Flight; the client turns it into a "
        "FeatureStoreException: hsfs/core/arrow_flight_client.py:93-96,466-471"),
    "no load balancers": Answer(
        None, "", None, "Failed to write to delta table in external cluster. Make sure datanode load balancer has "
                        "been setup on the cluster.",
        "client side: hsfs/core/delta_engine.py _setup_delta_rs (variables/loadbalancer_external_domain_datanode "
        "unset); reported on Serverless in featurestorebook/mlfs-book#46"),
}
