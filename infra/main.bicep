// Email engagement on Azure: one resource group holding a Flex Consumption Function App, its
// storage, a Key Vault for the signing keys, monitoring and a user-assigned managed identity.
// `azd up` deploys it (see docs/admin.md); infra/main.parameters.json maps the azd variables.
//
// Pinned Azure Verified Modules (br/public:avm/...) build the identity, the plan, the Function
// App and monitoring, as in Azure-Samples/functions-quickstart-python-http-azd. The storage
// account and the Key Vault are declared as plain resources in app/storage.bicep and
// app/keyvault.bicep instead of through their AVM modules: they hold the data and the secrets,
// and checkov (make infra-check) can only check resources it can read here, not modules it would
// have to fetch from the registry.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds a short unique suffix for every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person running azd, granted data access to run `python -m shared.ops.cli` against Azure. Empty: none.')
param principalId string = ''

@description('Resource group name. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Custom host name for the tracking links, such as track.contoso.com. Empty: the Function App default host.')
param trackingHostName string = ''

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GZRS'
])
@description('Storage redundancy. ZRS or GZRS where the region has availability zones.')
param storageSkuName string = 'Standard_LRS'

@minValue(1)
@description('Days interaction blobs are kept: the lifecycle rule and the app purge timer (RETENTION_DAYS) both use it.')
param retentionDays int = 90

@minLength(1)
@maxLength(8)
@description('Key id that signs new tracking tokens (TOKEN_ACTIVE_KID); it must be a key of tokenKeys.')
param tokenActiveKid string = 'k1'

@secure()
@description('TOKEN_KEYS as JSON, key id to key, for rotation. Empty: one key, tokenActiveKid to tokenSigningKey.')
param tokenKeys string = ''

@secure()
@description('Signing key for tracking tokens when tokenKeys is empty. Generated once by azd and kept in the azd environment.')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 48
      noSpecial: true
    }
  }
})
param tokenSigningKey string

@description('Audience of the seller API access tokens: the client id of its Entra app registration (v2 tokens).')
param entraAudience string

@description('Tenant whose Entra ID issues the seller API tokens. Empty: the deployment tenant.')
param entraTenantId string = ''

@allowed([
  'graph'
  'outbox'
])
@description('graph sends from the seller mailbox; outbox only stores the MIME (a trial without Graph access).')
param deliveryBackend string = 'graph'

@allowed([
  'managed_identity'
  'client_secret'
])
@description('How the app signs in to Microsoft Graph: the managed identity (preferred) or an app registration secret.')
param graphAuth string = 'managed_identity'

@description('Client id of the Graph app registration; only with graphAuth client_secret.')
param graphClientId string = ''

@secure()
@description('Client secret of the Graph app registration, stored in Key Vault; only with graphAuth client_secret.')
param graphClientSecret string = ''

@description('Microsoft Graph endpoint (a national cloud has its own).')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Outlook category that tracks an item.')
param trackingCategory string = 'Tracked to Engagement'

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances the app scales out to.')
param maximumInstanceCount int = 100

@minValue(1)
@maxValue(1000)
@description('HTTP requests one instance serves at once. The tracking routes are async and wait on storage, so more than the Python default of 1 is cheaper and just as fast.')
param httpPerInstanceConcurrency int = 16

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
var tenantId = empty(entraTenantId) ? tenant().tenantId : entraTenantId
var tokenKeysJson = empty(tokenKeys) ? string({
  '${tokenActiveKid}': tokenSigningKey
}) : tokenKeys
var trackingBaseUrl = empty(trackingHostName) ? 'https://${functionAppName}.azurewebsites.net' : 'https://${trackingHostName}'
var useGraphSecret = graphAuth == 'client_secret'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

// The app's one identity: storage, Key Vault references, Application Insights and Graph.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: 'plan-${resourceToken}'
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    retentionDays: retentionDays
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    tokenKeys: tokenKeysJson
    graphClientSecret: useGraphSecret ? graphClientSecret : ''
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

// Every setting the app reads (shared/core/settings.py), in one place; tests/infra/test_bicep.py
// checks this list against the Settings model. The host's own settings are added in
// app/api.bicep. Not set on purpose: STORAGE_CONNECTION_STRING (no keys anywhere),
// DEV_AUTH_KEY and GRAPH_STATIC_TOKEN (local development only), GRAPH_CERTIFICATE_PATH
// (Flex Consumption cannot load certificates).
var appSettings = union({
  ENVIRONMENT: 'azure'
  STORAGE_BLOB_URL: storage.outputs.blobEndpoint
  STORAGE_TABLE_URL: storage.outputs.tableEndpoint
  AZURE_CLIENT_ID: identity.outputs.clientId
  TRACKING_BASE_URL: trackingBaseUrl
  TOKEN_KEYS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.tokenKeysSecretUri})'
  TOKEN_ACTIVE_KID: tokenActiveKid
  AUTH_MODE: 'entra'
  ENTRA_ISSUER: 'https://login.microsoftonline.com/${tenantId}/v2.0'
  ENTRA_AUDIENCE: entraAudience
  ENTRA_JWKS_URL: 'https://login.microsoftonline.com/${tenantId}/discovery/v2.0/keys'
  DELIVERY_BACKEND: deliveryBackend
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_AUTH: graphAuth
  GRAPH_MAX_CONCURRENCY: '4'
  GRAPH_PAGE_SIZE: '500'
  TRACKING_CATEGORY: trackingCategory
  MAX_TRACKING_ATTEMPTS: '5'
  SEND_MAX_ATTEMPTS: '5'
  SEND_RETRY_SECONDS: '60'
  IDEMPOTENCY_HOURS: '24'
  MAX_HTML_BYTES: '3000000'
  MAX_ATTACHMENTS: '10'
  MAX_ATTACHMENT_BYTES: '10485760'
  MAX_TOTAL_ATTACHMENT_BYTES: '26214400'
  ATTACHMENT_LINK_MINUTES: '10'
  RETENTION_DAYS: string(retentionDays)
  FOLD_GRACE_SECONDS: '30'
  FOLD_SCHEDULE: '*/10 * * * * *'
  DISPATCH_SCHEDULE: '0 * * * * *'
  SYNC_SCHEDULE: '0 */15 * * * *'
  RETRY_SCHEDULE: '0 7-59/15 * * * *'
  REMINDER_SCHEDULE: '0 */15 * * * *'
  RETENTION_SCHEDULE: '0 30 2 * * *'
  ALERT_SCHEDULE: '*/5 * * * * *'
  // Which event classes the headline KPIs count (docs/measurement.md).
  COUNTED_CLASSES: '["human","privacy_proxy"]'
}, useGraphSecret ? {
  GRAPH_TENANT_ID: tenant().tenantId
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.graphClientSecretUri})'
} : {})

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    appServicePlanId: plan.outputs.resourceId
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    appSettings: appSettings
  }
  dependsOn: [
    rbac
  ]
}

// Flex Consumption cannot hold App Service managed certificates, so a custom tracking host is
// served by Azure Front Door with its own managed certificate, in front of the default host.
module trackingDomain 'app/frontdoor.bicep' = if (!empty(trackingHostName)) {
  name: 'tracking-domain'
  scope: rg
  params: {
    profileName: 'afd-${resourceToken}'
    endpointName: 'fde-${resourceToken}'
    hostName: trackingHostName
    originHostName: api.outputs.defaultHostName
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output TRACKING_BASE_URL string = trackingBaseUrl
output STORAGE_BLOB_URL string = storage.outputs.blobEndpoint
output STORAGE_TABLE_URL string = storage.outputs.tableEndpoint
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output TRACKING_DOMAIN_CNAME string = empty(trackingHostName) ? '' : trackingDomain.outputs.endpointHostName
output TRACKING_DOMAIN_VALIDATION_TOKEN string = empty(trackingHostName) ? '' : trackingDomain.outputs.validationToken
