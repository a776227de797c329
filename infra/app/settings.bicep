// The Function App's app settings, the whole set: the ones the code reads (built in main.bicep)
// and the Functions host's own. A resource of its own rather than the site module's
// appSettingsKeyValuePairs, for two reasons. That module merges the settings already on the app
// into the new ones, so a setting the template stops setting (GRAPH_CLIENT_SECRET after a switch
// back to the managed identity, a renamed setting) would stay on the app for good; this resource
// writes the complete list each time, and a setting not listed here is removed. And it runs once
// the app exists, so the settings can use the app's own default host name.

@description('Name of the Function App.')
param siteName string
param storageAccountName string
param applicationInsightsName string

@description('Client id of the app\'s user-assigned managed identity.')
param identityClientId string

@description('The app settings the code reads (built in main.bicep); the host settings are added here.')
param appSettings object

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The Functions host's own settings. AzureWebJobsStorage through the managed identity, blobs
// only: timers keep their schedule state and locks in blobs. The queue trigger's connection
// STORAGE, through the same identity. Telemetry with Entra ID auth, since the component refuses instrumentation keys.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
  // The fold_shard queue trigger's connection ("STORAGE", functions/timers/fold.py).
  STORAGE__credential: 'managedidentity'
  STORAGE__clientId: identityClientId
  STORAGE__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// checkov reads every Microsoft.Web/sites/config as the site's web configuration; this one is the
// appsettings configuration, which has none of the properties those checks look for. The site's
// own settings (HTTPS only, TLS 1.2, no FTP) are in app/api.bicep.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:Not the site: App Service Authentication is a site setting. The seller API checks Entra ID tokens itself (shared/auth.py) and the tracking routes are anonymous by design.
  // checkov:skip=CKV_AZURE_63:Not the site: HTTP logging is a web configuration setting; the app's requests go to Application Insights.
  // checkov:skip=CKV_AZURE_65:Not the site: detailed error pages are a web configuration setting.
  // checkov:skip=CKV_AZURE_66:Not the site: failed request tracing is a web configuration setting.
  // checkov:skip=CKV_AZURE_80:Not the site, and a Python app: no .NET Framework version applies.
  // checkov:skip=CKV_AZURE_88:Not the site, and Flex Consumption mounts no Azure Files share: the package comes from a blob container.
  // checkov:skip=CKV_AZURE_222:Not the site: public network access is a site setting, and recipients' mail clients must reach the tracking routes from anywhere.
  parent: site
  name: 'appsettings'
  properties: union(appSettings, hostSettings)
}
