// Role assignments, least privilege: what the app's managed identity needs and nothing else.
// Queues: the fold's shards go through the `fold-shards` queue (the app sends, the host's queue
// trigger reads and deletes, and moves a failing message to the poison queue).
// ARM refuses an assignment whose principalType is not the principal's (UnmatchedPrincipalType):
// the managed identity is a service principal by definition, the deployer is what azd says.

param storageAccountName string
param keyVaultName string
param applicationInsightsName string

@description('Principal id of the app user-assigned managed identity.')
param identityPrincipalId string

@description('Object id of whoever runs azd (AZURE_PRINCIPAL_ID); empty: no assignments for them.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('What deployerPrincipalId is, as azd reports its login (AZURE_PRINCIPAL_TYPE). Only a User gets data access, for `python -m shared.cli`: a pipeline\'s service principal needs none to deploy.')
param deployerPrincipalType string = 'User'

var deployerIsAPerson = !empty(deployerPrincipalId) && deployerPrincipalType == 'User'

// Storage Blob Data Owner: the Functions host's AzureWebJobsStorage (timer schedule state and
// locks), the Flex Consumption deployment container, the app's blobs and user-delegation SAS for
// attachment links. The host documentation asks for Owner, not Contributor.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Table Data Contributor: the app's tables (messages, events, mailboxes...).
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Storage Blob Data Contributor: the deploying person's access for `python -m shared.ops.cli`.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
// Storage Queue Data Contributor: the fold-shards queue (send, read, delete, poison).
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Key Vault Secrets User: read secret values, for the app settings' Key Vault references.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Monitoring Metrics Publisher: send telemetry to Application Insights with Entra ID auth.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (deployerIsAPerson) {
  name: guid(storageAccount.id, deployerPrincipalId, storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

resource userTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (deployerIsAPerson) {
  name: guid(storageAccount.id, deployerPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
