// The app's storage account: interaction blobs, message bodies, attachments and tables, plus the
// Flex Consumption deployment container and the Functions host's own blobs. Reached only with
// Entra ID (the managed identity): shared keys, SAS signed with account keys and anonymous
// reads are all off.

@description('Storage account name, 3-24 lowercase letters and digits.')
param name string
param location string = resourceGroup().location
param tags object = {}

@minValue(1)
@description('Days after which a blob under interactions/ is deleted (the app RETENTION_DAYS).')
param retentionDays int

@description('Blob container Flex Consumption deploys the app package from.')
param deploymentContainerName string

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GZRS'
])
@description('Redundancy: LRS (three copies in one datacenter), ZRS (three zones) or GZRS (plus a second region).')
param skuName string = 'Standard_LRS'

// The containers and tables the app uses: the names in shared/core/storage.py (CONTAINERS, TABLES),
// checked by tests/infra/test_bicep.py.
var containerNames = [
  'interactions'
  'messages'
  'attachments'
  'outbox'
  'activities'
  'graphpermits'
]
var queueNames = [
  'fold-shards'
  'fold-shards-poison'
]
var tableNames = [
  'alerts'
  'reminders'
  'records'
  'recordindex'
  'messages'
  'events'
  'state'
  'schedule'
  'messageindex'
  'mailboxes'
  'activities'
  'templates'
  'templatestats'
  'webhooks'
  'idempotency'
  'sellers'
  'timelineindex'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    // checkov:skip=CKV_AZURE_59:The Flex Consumption app has no virtual network here, so it reaches storage over the public endpoint; every request needs an Entra ID token (shared keys are off). Private endpoints are the documented hardening step (docs/admin.md).
    // checkov:skip=CKV_AZURE_35:Same reason: a default-deny firewall would shut out the app, which reaches the account without a virtual network. Access is Entra ID only.
    // checkov:skip=CKV_AZURE_206:Locally redundant by default, which every Flex Consumption region offers: interaction blobs live retentionDays and geo-replicating every tracking write costs more than the loss it prevents. The storageSkuName parameter of main.bicep takes Standard_ZRS or Standard_GZRS.
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // A deleted blob stays recoverable for 7 days: erasure and retention are complete after that.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in concat(containerNames, [deploymentContainerName]): {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

// The queue that hands fold shards to the queue-triggered workers, and the host's poison queue
// for a message that failed maxDequeueCount times (host.json); the app's QUEUES.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

// Interaction blobs are written once and named by time bucket; storage deletes them after
// retentionDays itself, and the app purge timer does the same for any account without this rule.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-interactions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'interactions/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: retentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = account.name
output resourceId string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output queueEndpoint string = account.properties.primaryEndpoints.queue
