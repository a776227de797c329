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

@description('Object id of whoever runs azd: azd fills it from its login (AZURE_PRINCIPAL_ID), a person or a pipeline. A person gets data access to run `python -m shared.ops.cli` against Azure. Empty: nobody.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('What principalId is, as azd reports its login (AZURE_PRINCIPAL_TYPE): a User, or the ServicePrincipal of a pipeline signed in with a federated credential or a secret. Only a User gets data access: a pipeline needs none.')
param principalType string = 'User'

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
@description('Every signing key, for rotation, as key id and key pairs: k1:<key>,k2:<key> (docs/admin.md, Key rotation). Not JSON: azd pastes a string parameter into the JSON text of main.parameters.json unescaped, so quotes would stop azd provision. Empty: one key, tokenActiveKid to tokenSigningKey.')
param tokenKeys string = ''

@secure()
@description('Signing key for tracking tokens when tokenKeys is empty. Generated once by azd and kept in the azd environment (config.json); mapped to TOKEN_SIGNING_KEY so that `azd pipeline config` can hand the same key to a pipeline.')
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

@description('Issuer of the seller API tokens, exactly as in their iss claim. Empty: this cloud\'s sign-in endpoint, then <tenant>/v2.0. Set it where the cloud issues tokens from another host than it signs in at (docs/admin.md, National clouds).')
param entraIssuer string = ''

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

@description('Tenant of the mailboxes, where the Graph app registration lives; only with graphAuth client_secret. Empty: the deployment tenant.')
param graphTenantId string = ''

@secure()
@description('Client secret of the Graph app registration, stored in Key Vault; only with graphAuth client_secret.')
param graphClientSecret string = ''

@description('Microsoft Graph endpoint of the mailboxes\' cloud, with its version (a national cloud has its own). Empty: the app\'s default, the global service (GRAPH_BASE_URL in the README).')
param graphBaseUrl string = ''

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
// The sign-in endpoint of the cloud this deployment runs in (global, US Government, 21Vianet).
var loginEndpoint = environment().authentication.loginEndpoint
var useGraphSecret = graphAuth == 'client_secret'

// TOKEN_KEYS for Key Vault and the app: JSON, key id to key. tokenKeys arrives as
// `k1:<key>,k2:<key>` (spaces and empty entries ignored). Keys are letters, digits, '-' and '_',
// as docs/admin.md makes them and inputProblems checks, so the pairs become JSON by text alone.
var tokenKeyEntries = filter(split(replace(tokenKeys, ' ', ''), ','), entry => !empty(entry))
var tokenKeysJson = empty(tokenKeyEntries) ? string({
  '${tokenActiveKid}': tokenSigningKey
}) : '{"${replace(join(tokenKeyEntries, '","'), ':', '":"')}"}'

// TOKEN_KEYS entries the app would refuse: not `id:key`, an id of 1 to 8 characters and a key of
// 32 or more without quotes. A vault://... reference copied as a key has two colons too many.
var malformedTokenKeys = filter(tokenKeyEntries, entry => length(split(entry, ':')) != 2 || empty(first(split(entry, ':'))) || length(first(split(entry, ':'))) > 8 || length(last(split(entry, ':'))) < 32 || contains(entry, '"'))

// Inputs that would deploy an app which refuses to start, or links that stop working: each is a
// message, or '' when that input is fine. app/inputs.bicep refuses any message, before the
// resource group (and so anything else) is created.
var inputProblems = filter([
  useGraphSecret && empty(graphClientId) ? 'GRAPH_AUTH=client_secret needs GRAPH_CLIENT_ID, the client id of the Graph app registration: azd env set GRAPH_CLIENT_ID <client id>.' : ''
  useGraphSecret && empty(graphClientSecret) ? 'GRAPH_AUTH=client_secret needs GRAPH_CLIENT_SECRET: azd env set GRAPH_CLIENT_SECRET <secret>.' : ''
  !empty(malformedTokenKeys) ? 'TOKEN_KEYS is key id and key pairs, k1:<key>,k2:<key>: ids of 1 to 8 letters or digits, keys of at least 32 letters, digits, - or _ (docs/admin.md, Key rotation).' : ''
  !empty(tokenKeyEntries) && !contains(',${join(tokenKeyEntries, ',')}', ',${tokenActiveKid}:') ? 'TOKEN_ACTIVE_KID must be one of the key ids in TOKEN_KEYS.' : ''
], problem => !empty(problem))

module inputs 'app/inputs.bicep' = {
  name: 'inputs'
  params: {
    problems: join(inputProblems, ' ')
  }
}

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
  dependsOn: [
    inputs
  ]
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
    storeGraphClientSecret: useGraphSecret
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
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    appServicePlanId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
  }
  dependsOn: [
    rbac
  ]
}

// The app's own default host name, as App Service gives it in this cloud.
var trackingBaseUrl = empty(trackingHostName) ? 'https://${api.outputs.defaultHostName}' : 'https://${trackingHostName}'

// Every setting the app reads (shared/core/settings.py), in one place; tests/infra/test_bicep.py
// checks this list against the Settings model. The host's own settings are added in
// app/settings.bicep, which writes the whole set. Not set on purpose: STORAGE_CONNECTION_STRING
// (no keys anywhere), DEV_AUTH_KEY and GRAPH_STATIC_TOKEN (local development only),
// GRAPH_CERTIFICATE_PATH (Flex Consumption cannot load certificates). GRAPH_BASE_URL only when
// given: the app's default is the global service.
var appSettings = union({
  ENVIRONMENT: 'azure'
  STORAGE_BLOB_URL: storage.outputs.blobEndpoint
  STORAGE_TABLE_URL: storage.outputs.tableEndpoint
  STORAGE_QUEUE_URL: storage.outputs.queueEndpoint
  AZURE_CLIENT_ID: identity.outputs.clientId
  TRACKING_BASE_URL: trackingBaseUrl
  TOKEN_KEYS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.tokenKeysSecretUri})'
  TOKEN_ACTIVE_KID: tokenActiveKid
  AUTH_MODE: 'entra'
  ENTRA_ISSUER: empty(entraIssuer) ? uri(loginEndpoint, '${tenantId}/v2.0') : entraIssuer
  ENTRA_AUDIENCE: entraAudience
  ENTRA_JWKS_URL: uri(loginEndpoint, '${tenantId}/discovery/v2.0/keys')
  // The web app's sign-in in the browser (MSAL): the API's own registration, whose SPA redirect
  // URI is the WEBAPP_REDIRECT_URI output (docs/admin.md, The seller API's app registration).
  ENTRA_SPA_CLIENT_ID: entraAudience
  ENTRA_SPA_AUTHORITY: uri(loginEndpoint, tenantId)
  ENTRA_SPA_SCOPE: 'api://${entraAudience}/Engagement.Use'
  DELIVERY_BACKEND: deliveryBackend
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
  MAX_INDIVIDUAL_COPIES: '25'
  ATTACHMENT_LINK_MINUTES: '10'
  RETENTION_DAYS: string(retentionDays)
  FOLD_GRACE_SECONDS: '30'
  FOLD_SCHEDULE: '*/10 * * * * *'
  FOLD_BACKSTOP_SECONDS: '60'
  DISPATCH_SCHEDULE: '0 * * * * *'
  SYNC_SCHEDULE: '0 */15 * * * *'
  RETRY_SCHEDULE: '0 7-59/15 * * * *'
  REMINDER_SCHEDULE: '0 */15 * * * *'
  RETENTION_SCHEDULE: '0 30 2 * * *'
  ALERT_SCHEDULE: '*/5 * * * * *'
  ALERT_WAIT_SECONDS: '60'
  REVISION_SECONDS: '600'
  // The app's log level, and the libraries' (the storage SDK logs every request at INFO).
  LOG_LEVEL: 'INFO'
  AZURE_LOG_LEVEL: 'WARNING'
  // Which event classes the headline KPIs count (docs/measurement.md).
  COUNTED_CLASSES: '["human","proxy_open"]'
}, useGraphSecret ? {
  GRAPH_TENANT_ID: empty(graphTenantId) ? tenant().tenantId : graphTenantId
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.graphClientSecretUri})'
} : {}, empty(graphBaseUrl) ? {} : {
  GRAPH_BASE_URL: graphBaseUrl
})

module apiSettings 'app/settings.bicep' = {
  name: 'api-settings'
  scope: rg
  params: {
    siteName: api.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
    identityClientId: identity.outputs.clientId
    appSettings: appSettings
  }
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
// The seller's web app, and the SPA redirect URI its app registration needs (docs/admin.md).
output WEBAPP_REDIRECT_URI string = 'https://${api.outputs.defaultHostName}/app'
output STORAGE_BLOB_URL string = storage.outputs.blobEndpoint
output STORAGE_TABLE_URL string = storage.outputs.tableEndpoint
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output TRACKING_DOMAIN_CNAME string = empty(trackingHostName) ? '' : trackingDomain.outputs.endpointHostName
output TRACKING_DOMAIN_VALIDATION_TOKEN string = empty(trackingHostName) ? '' : trackingDomain.outputs.validationToken
