// The custom tracking host (trackingHostName). Flex Consumption cannot bind App Service managed
// certificates, so Azure Front Door (Standard) serves the host with its own managed certificate
// and forwards every request, uncached, to the Function App's default host. Recipients' IPs
// arrive in X-Forwarded-For, which the app reads first.
//
// DNS, once deployed (outputs of main.bicep): a CNAME from hostName to TRACKING_DOMAIN_CNAME and
// a TXT record _dnsauth.<hostName> holding TRACKING_DOMAIN_VALIDATION_TOKEN.

param profileName string
param endpointName string

@description('The custom host, such as track.contoso.com.')
param hostName string

@description('Default host name of the Function App, the only origin.')
param originHostName string

param tags object = {}

resource profile 'Microsoft.Cdn/profiles@2024-02-01' = {
  name: profileName
  location: 'global'
  tags: tags
  sku: {
    name: 'Standard_AzureFrontDoor'
  }
  properties: {
    originResponseTimeoutSeconds: 30
  }
}

resource endpoint 'Microsoft.Cdn/profiles/afdEndpoints@2024-02-01' = {
  parent: profile
  name: endpointName
  location: 'global'
  tags: tags
  properties: {
    enabledState: 'Enabled'
  }
}

// One origin: no health probes (they would only add requests the app has to answer).
resource originGroup 'Microsoft.Cdn/profiles/originGroups@2024-02-01' = {
  parent: profile
  name: 'function-app'
  properties: {
    loadBalancingSettings: {
      sampleSize: 4
      successfulSamplesRequired: 3
      additionalLatencyInMilliseconds: 50
    }
    sessionAffinityState: 'Disabled'
  }
}

resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2024-02-01' = {
  parent: originGroup
  name: 'function-app'
  properties: {
    hostName: originHostName
    originHostHeader: originHostName
    httpPort: 80
    httpsPort: 443
    priority: 1
    weight: 1000
    enabledState: 'Enabled'
    enforceCertificateNameCheck: true
  }
}

resource customDomain 'Microsoft.Cdn/profiles/customDomains@2024-02-01' = {
  parent: profile
  name: replace(hostName, '.', '-')
  properties: {
    hostName: hostName
    tlsSettings: {
      certificateType: 'ManagedCertificate'
      minimumTlsVersion: 'TLS12'
    }
  }
}

// Everything on the custom host goes to the app over HTTPS; plain HTTP is redirected. No
// caching rule: every pixel and click must reach the app to be counted.
resource route 'Microsoft.Cdn/profiles/afdEndpoints/routes@2024-02-01' = {
  parent: endpoint
  name: 'tracking'
  properties: {
    customDomains: [
      {
        id: customDomain.id
      }
    ]
    originGroup: {
      id: originGroup.id
    }
    supportedProtocols: [
      'Http'
      'Https'
    ]
    patternsToMatch: [
      '/*'
    ]
    forwardingProtocol: 'HttpsOnly'
    httpsRedirect: 'Enabled'
    linkToDefaultDomain: 'Enabled'
    enabledState: 'Enabled'
  }
  dependsOn: [
    origin
  ]
}

output endpointHostName string = endpoint.properties.hostName
output validationToken string = customDomain.properties.validationProperties.validationToken
