/* SPDX-License-Identifier: Apache-2.0
 * unimplemented: the API's method paths; the missing ones answer 501. */
#include "unimplemented.h"

#include <string.h>

/* Every rpc of grafana/pyroscope api/ (its .proto files, read at commit
 * 3fe6a457a320): refresh by listing `rpc` lines per package and service. */
const char *const kiln_api_methods[] = {
    "/adhocprofiles.v1.AdHocProfileService/Diff",
    "/adhocprofiles.v1.AdHocProfileService/Get",
    "/adhocprofiles.v1.AdHocProfileService/List",
    "/adhocprofiles.v1.AdHocProfileService/Upload",
    "/capabilities.v1.FeatureFlagsService/GetFeatureFlags",
    "/debuginfo.v1alpha1.DebuginfoService/DeleteDebuginfo",
    "/debuginfo.v1alpha1.DebuginfoService/ListDebuginfo",
    "/debuginfo.v1alpha1.DebuginfoService/ShouldInitiateUpload",
    "/debuginfo.v1alpha1.DebuginfoService/UploadFinished",
    "/ingester.v1.IngesterService/BlockMetadata",
    "/ingester.v1.IngesterService/Flush",
    "/ingester.v1.IngesterService/GetBlockStats",
    "/ingester.v1.IngesterService/GetProfileStats",
    "/ingester.v1.IngesterService/LabelNames",
    "/ingester.v1.IngesterService/LabelValues",
    "/ingester.v1.IngesterService/MergeProfilesLabels",
    "/ingester.v1.IngesterService/MergeProfilesPprof",
    "/ingester.v1.IngesterService/MergeProfilesStacktraces",
    "/ingester.v1.IngesterService/MergeSpanProfile",
    "/ingester.v1.IngesterService/ProfileTypes",
    "/ingester.v1.IngesterService/Push",
    "/ingester.v1.IngesterService/Series",
    "/metastore.v1.CompactionService/PollCompactionJobs",
    "/metastore.v1.IndexService/AddBlock",
    "/metastore.v1.IndexService/GetBlockMetadata",
    "/metastore.v1.MetadataQueryService/QueryMetadata",
    "/metastore.v1.MetadataQueryService/QueryMetadataLabels",
    "/metastore.v1.TenantService/DeleteTenant",
    "/metastore.v1.TenantService/GetTenant",
    "/metastore.v1.TenantService/GetTenants",
    "/push.v1.PusherService/Push",
    "/querier.v1.QuerierService/AnalyzeQuery",
    "/querier.v1.QuerierService/Diff",
    "/querier.v1.QuerierService/GetProfileStats",
    "/querier.v1.QuerierService/LabelNames",
    "/querier.v1.QuerierService/LabelValues",
    "/querier.v1.QuerierService/ProfileTypes",
    "/querier.v1.QuerierService/SelectHeatmap",
    "/querier.v1.QuerierService/SelectMergeProfile",
    "/querier.v1.QuerierService/SelectMergeSpanProfile",
    "/querier.v1.QuerierService/SelectMergeStacktraces",
    "/querier.v1.QuerierService/SelectSeries",
    "/querier.v1.QuerierService/Series",
    "/query.v1.QueryBackendService/Invoke",
    "/query.v1.QueryFrontendService/Query",
    "/segmentwriter.v1.SegmentWriterService/Push",
    "/settings.v1.RecordingRulesService/DeleteRecordingRule",
    "/settings.v1.RecordingRulesService/GetRecordingRule",
    "/settings.v1.RecordingRulesService/ListRecordingRules",
    "/settings.v1.RecordingRulesService/UpsertRecordingRule",
    "/settings.v1.SettingsService/Delete",
    "/settings.v1.SettingsService/Get",
    "/settings.v1.SettingsService/Set",
    "/status.v1.StatusService/GetBuildInfo",
    "/status.v1.StatusService/GetConfig",
    "/status.v1.StatusService/GetDefaultConfig",
    "/status.v1.StatusService/GetDiffConfig",
    "/storegateway.v1.StoreGatewayService/BlockMetadata",
    "/storegateway.v1.StoreGatewayService/GetBlockStats",
    "/storegateway.v1.StoreGatewayService/LabelNames",
    "/storegateway.v1.StoreGatewayService/LabelValues",
    "/storegateway.v1.StoreGatewayService/MergeProfilesLabels",
    "/storegateway.v1.StoreGatewayService/MergeProfilesPprof",
    "/storegateway.v1.StoreGatewayService/MergeProfilesStacktraces",
    "/storegateway.v1.StoreGatewayService/MergeSpanProfile",
    "/storegateway.v1.StoreGatewayService/ProfileTypes",
    "/storegateway.v1.StoreGatewayService/Series",
    "/vcs.v1.VCSService/GetCommit",
    "/vcs.v1.VCSService/GetCommits",
    "/vcs.v1.VCSService/GetFile",
    "/vcs.v1.VCSService/GithubApp",
    "/vcs.v1.VCSService/GithubLogin",
    "/vcs.v1.VCSService/GithubRefresh",
    "/version.v1.Version/Version",
    NULL,
};

size_t kiln_unimplemented_register(kiln_rpc_registry_t *rpc)
{
    size_t added = 0;
    for (size_t i = 0; kiln_api_methods[i] != NULL; i++) {
        const char *p = kiln_api_methods[i];
        if (kiln_rpc_find(rpc, KILN_RPC_PUBLIC, p, strlen(p)) != NULL)
            continue;
        /* No request type: kiln_rpc_invoke answers unimplemented unread. */
        kiln_rpc_method m = {p, NULL, NULL, NULL, NULL, KILN_RPC_PUBLIC, NULL};
        kiln_rpc_register(rpc, &m);
        added++;
    }
    return added;
}
