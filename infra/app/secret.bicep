// One Key Vault secret. A module of its own so that an optional secret is an optional module:
// checkov reads the resource below, where it cannot read inside a resource declared with `if`.

param vaultName string
param name string
param contentType string
param tags object = {}

@secure()
@minLength(1)
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: name
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_41:No fixed expiry date. Tracking keys must verify for as long as links signed with them must work, and are rotated explicitly (docs/admin.md, Key rotation); a Graph client secret's lifetime is set and enforced on its app registration.
    value: value
    contentType: contentType
  }
}

// Versionless: the app picks up a new version of the secret without a template change.
output uri string = secret.properties.secretUri
