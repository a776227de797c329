// Key Vault for the app's secrets: the tracking-token signing keys (TOKEN_KEYS) and, only when
// Graph is reached with an app registration secret, that secret. Access is Azure RBAC only; the
// app reads the secrets through Key Vault references in its app settings.

@description('Key Vault name, 3-24 letters, digits and hyphens.')
param name string
param location string = resourceGroup().location
param tags object = {}

@secure()
@description('TOKEN_KEYS: JSON object of key id to signing key.')
param tokenKeys string

@description('Whether to store graphClientSecret: only when an app registration signs in to Graph.')
param storeGraphClientSecret bool = false

@secure()
@description('Graph app registration client secret; empty when the managed identity signs in to Graph.')
param graphClientSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109:Flex Consumption cannot resolve Key Vault references to a vault behind a firewall, even with virtual network integration (Microsoft docs, Flex Consumption considerations). Access is Entra ID and RBAC only.
    // checkov:skip=CKV_AZURE_189:Same reason: the app settings reference this vault, which Flex Consumption reaches over the public endpoint.
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module tokenKeysSecret 'secret.bicep' = {
  name: 'secret-token-keys'
  params: {
    vaultName: vault.name
    name: 'token-keys'
    value: tokenKeys
    contentType: 'application/json'
    tags: tags
  }
}

// Decided by a plain parameter, not by testing the secret: an output that reads a secure
// parameter, even only to test it, is what the linter's outputs-should-not-contain-secrets flags.
module graphSecret 'secret.bicep' = if (storeGraphClientSecret) {
  name: 'secret-graph-client'
  params: {
    vaultName: vault.name
    name: 'graph-client-secret'
    value: graphClientSecret
    contentType: 'text/plain'
    tags: tags
  }
}

output name string = vault.name
output resourceId string = vault.id
output tokenKeysSecretUri string = tokenKeysSecret.outputs.uri
output graphClientSecretUri string = storeGraphClientSecret ? graphSecret.outputs.uri : ''
